//! What a module dialect must provide to the generic driver task.

use std::future::Future;

use lorabridge_hardware::Modulation;

use super::DriverConfig;
use super::open_port::{Decode, OpenPort, StepError};
use crate::{DriverFacts, ModuleInfo, ModuleKind, RadioError};

/// One module's command set, as async exchanges over an [`OpenPort`].
///
/// Generic (not object-safe) on purpose: the driver task is monomorphised per dialect, and the
/// object-safe surface is the [`crate::Radio`] trait on the handle. A dialect is a value, not
/// only a type: the E22's carries its mode pins and settings.
pub trait Dialect: Send + 'static {
    /// The pure parser for this module's output.
    type Decoder: Decode;
    /// Which module this is.
    const KIND: ModuleKind;

    /// Largest frame one send accepts (for the E22 it depends on its sub-packet setting).
    fn mtu(&self) -> usize;

    /// Refuses modulations the module's commands cannot express, before touching the port.
    fn check(modulation: &Modulation) -> Result<(), RadioError> {
        Self::KIND
            .check(modulation)
            .map_err(|e| RadioError::Unsupported {
                module: Self::KIND.module_name(),
                reason: e.to_string(),
            })
    }

    /// Confirms the module answers in this dialect.
    fn detect(
        &mut self,
        link: &mut OpenPort<Self::Decoder>,
        cfg: &DriverConfig,
    ) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Applies the modulation and leaves the module receiving.
    fn configure(
        &mut self,
        link: &mut OpenPort<Self::Decoder>,
        modulation: &Modulation,
        cfg: &DriverConfig,
    ) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Transmits one frame (already checked against the MTU) and returns the module to receive.
    fn transmit(
        &mut self,
        link: &mut OpenPort<Self::Decoder>,
        frame: &[u8],
        cfg: &DriverConfig,
    ) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Leaves the module quiet (receiver or radio off) before the port is closed.
    fn close(
        &mut self,
        link: &mut OpenPort<Self::Decoder>,
        cfg: &DriverConfig,
    ) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Reads what the module can tell about itself without changing its settings.
    fn probe(
        &mut self,
        link: &mut OpenPort<Self::Decoder>,
        cfg: &DriverConfig,
    ) -> impl Future<Output = Result<ModuleInfo, StepError>> + Send;
}
