//! Regional radio plans, modulation settings, time-on-air, duty-cycle ledger and board profiles.

pub mod modulation;

pub use modulation::Modulation;
