//! One SPI transaction on an emulated chip: the MOSI bytes of all its operations form one
//! NSS-low period, which the chip answers with as many MISO bytes.

use embedded_hal::spi::Operation;

use super::{Shared, SpiChip};

/// Why an emulated SPI transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmuSpiError {
    Unplugged,
}

impl embedded_hal::spi::Error for EmuSpiError {
    fn kind(&self) -> embedded_hal::spi::ErrorKind {
        embedded_hal::spi::ErrorKind::Other
    }
}

/// Gathers the operations' MOSI, lets the chip answer it, and hands the MISO back to the
/// operations that read.
pub(crate) fn transaction<C: SpiChip>(
    shared: &Shared<C>,
    ops: &mut [Operation<'_, u8>],
) -> Result<(), EmuSpiError> {
    if shared.unplugged() {
        return Err(EmuSpiError::Unplugged);
    }
    let mut mosi = Vec::new();
    for o in ops.iter() {
        match o {
            Operation::Write(w) => mosi.extend_from_slice(w),
            Operation::Transfer(_, w) => mosi.extend_from_slice(w),
            Operation::TransferInPlace(b) => mosi.extend_from_slice(b),
            Operation::Read(r) => mosi.extend(std::iter::repeat_n(0u8, r.len())),
            Operation::DelayNs(_) => {}
        }
    }
    let miso = {
        let mut chip = shared.lock();
        let (miso, ctl) = chip.exchange(&mosi);
        for c in ctl {
            let _ = shared.ctl.send(c);
        }
        shared.settle(&chip);
        miso
    };
    let mut at = 0;
    for o in ops.iter_mut() {
        match o {
            Operation::Write(w) => at += w.len(),
            Operation::Transfer(r, w) => {
                let n = r.len().min(w.len());
                r[..n].copy_from_slice(&miso[at..at + n]);
                at += w.len();
            }
            Operation::TransferInPlace(b) => {
                let n = b.len();
                b.copy_from_slice(&miso[at..at + n]);
                at += n;
            }
            Operation::Read(r) => {
                let n = r.len();
                r.copy_from_slice(&miso[at..at + n]);
                at += n;
            }
            Operation::DelayNs(_) => {}
        }
    }
    Ok(())
}
