//! SX1262 (SX126x family) radios on SPI: the RAK13300 on a RAK6421 HAT, the E22-900M modules
//! of the MeshAdv boards.
//!
//! Unlike the serial modules there is no firmware between the host and the radio: the
//! driver speaks the chip's command set ([`commands`]) over SPI, with BUSY, DIO1 and NRESET
//! on GPIO lines ([`chip`]). So every LoRa setting is the host's: frequency, SF, bandwidth,
//! coding rate, preamble, power and any sync word, which is why an SX1262 bridge hears a
//! RAK3172 (RUI3) bridge set to the same [`Modulation`], sync word 0x12 included (the
//! chip's register holds it spread out as 0x1424, [`commands::sync_word_register`]).
//!
//! **Why not `lora-phy`.** lora-phy 3.0.1 was read first and set aside: in continuous RX its
//! IRQ handler reports a packet whose CRC failed as received (it returns "done" on RxDone
//! without looking at the CRC error bit), its BUSY wait has no timeout (a stuck BUSY hangs
//! the caller), its IRQ processing is documented as unsafe to cancel inside a `select!`,
//! which is exactly how a driver that must both receive and send waits, and its trait
//! futures carry no `Send` bound. The subset of the command set the driver needs is small
//! and fully specified by the datasheet, so it is written here instead.
//!
//! The datasheet's errata (§15) are applied: the 500 kHz modulation-quality bit, the PA
//! clamp against antenna mismatch, and the IQ polarity bit; the implicit-header timeout
//! erratum does not apply (the driver uses explicit headers and no RX timeout).
//!
//! **The driver** is the one shared with the SX127x ([`crate::spi_radio`]): request queue,
//! listen before talk, timeouts and recovery by reset. This module says how those steps are
//! done with the SX126x's commands.
//!
//! **Receiving.** DIO1 carries TxDone, RxDone, CRC and header errors, CAD and timeout IRQs;
//! RSSI and SNR come from GetPacketStatus.
//!
//! **Listen before talk** runs the chip's CAD over 4 symbols.
//!
//! **Failures.** Every command waits for BUSY low for at most
//! [`DriverConfig::command_timeout`]; a stuck BUSY or a status byte no chip sends is an error,
//! and the driver resets the chip.
//!
//! **Memory.** The bus layer holds one exchange buffer of 260 B.
//!
//! # Airtime and usable payload per frame
//!
//! As for every chip on SPI: see [`crate::spi_radio`].
//!
//! # What it cannot do
//!
//! FSK; frames over 255 B; the SX127x (a register file, not this command set: see
//! [`crate::sx127x`]);
//! measure a board's amplifier (its gain is taken from the board's highest power,
//! [`Sx126xSettings::from_board`], so `tx_power_dbm` is meant at the antenna socket); tell an
//! unplugged HAT from a dead one (both read as an empty bus); wake on radio or receive in
//! duty-cycled RX.

pub mod chip;
pub mod commands;
pub mod linux;

use std::time::Duration;

use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal_async::digital::Wait;
use embedded_hal_async::spi::SpiDevice;
use lorabridge_hardware::Modulation;
use serde::{Deserialize, Serialize};

pub use chip::{Antenna, Bus, Chip};
use commands::{ChipMode, irq, op};
pub use commands::{MAX_PAYLOAD, TcxoVoltage};

use crate::spi_radio::{Irqs, SpiRadio, Transceiver};
use crate::{DriverConfig, DriverFacts, ModuleKind, RadioError, RxFrame};

/// CAD length: SetCadParams code 2 = 4 symbols.
const CAD_SYMBOLS_CODE: u8 = 0x02;
const CAD_SYMBOLS: u32 = 4;
/// How long the TCXO is given to start when DIO3 powers it (SetDio3AsTcxoCtrl's delay).
const TCXO_STARTUP_US: u64 = 5_000;

/// Settings of the board around the chip that no [`Modulation`] field carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sx126xSettings {
    /// DIO3 powers the board's TCXO at this voltage (`None`: the board has a crystal).
    pub tcxo: Option<TcxoVoltage>,
    /// DIO2 drives the antenna switch's transmit side.
    pub dio2_rf_switch: bool,
    /// Use the chip's DC-DC regulator instead of its LDO (every board we know fits the
    /// inductor it needs).
    pub dcdc: bool,
    /// Channel activity detection before each transmission ([`crate::spi_radio`]).
    pub listen_before_talk: bool,
    /// Gain of an amplifier between the chip and the antenna socket, in dB: the chip is set
    /// to the modulation's power minus this, so that `tx_power_dbm` stays the power at the
    /// socket, which is what the regional rules and the board profile limit.
    pub amplifier_gain_db: u8,
}

impl Default for Sx126xSettings {
    fn default() -> Self {
        Self {
            tcxo: None,
            dio2_rf_switch: false,
            dcdc: true,
            listen_before_talk: true,
            amplifier_gain_db: 0,
        }
    }
}

impl Sx126xSettings {
    /// What a board profile says: a TCXO on DIO3 (at 1.8 V: the profiles name no voltage,
    /// and 1.8 V is what the E22-900M and RAK13300 modules' TCXOs take, per their
    /// meshtasticd configurations), the RF switch on DIO2, and an amplifier's gain: what the
    /// board's highest power exceeds the chip's +22 dBm by (8 dB on the 30 dBm MeshAdv-Pi),
    /// on the assumption that the board reaches its highest power at the chip's.
    pub fn from_board(board: &lorabridge_hardware::BoardProfile) -> Self {
        let pins = board.pins.clone().unwrap_or_default();
        let chip_max = *commands::POWER_DBM.end();
        Self {
            tcxo: pins.dio3_tcxo.then_some(TcxoVoltage::V1_8),
            dio2_rf_switch: pins.dio2_rf_switch,
            amplifier_gain_db: board.tx_power_max_dbm.saturating_sub(chip_max).max(0) as u8,
            ..Self::default()
        }
    }

    /// The power to set at the chip for `socket_dbm` at the antenna socket, if the chip can.
    pub fn chip_power(&self, socket_dbm: i8) -> Option<i8> {
        let chip = i16::from(socket_dbm) - i16::from(self.amplifier_gain_db);
        i8::try_from(chip)
            .ok()
            .filter(|p| commands::POWER_DBM.contains(p))
    }
}

/// Resets and initialises the chip on `bus`, then starts the driver; a missing or
/// miswired radio fails here, at once.
pub async fn open<S, B, D, O>(
    bus: Bus<S, B, D, O>,
    settings: Sx126xSettings,
    cfg: DriverConfig,
) -> Result<SpiRadio, RadioError>
where
    S: SpiDevice + Send + 'static,
    B: InputPin + Wait + Send + 'static,
    D: Wait + Send + 'static,
    O: OutputPin + Send + 'static,
{
    let chip = Sx126x {
        chip: Chip::new(bus, cfg.command_timeout),
        settings,
    };
    let check = Box::new(move |m: &Modulation| check(m, &settings));
    SpiRadio::open(ModuleKind::Sx126x, chip, check, cfg).await
}

/// Refuses what the chip cannot be set to, before anything is sent to it.
fn check(m: &Modulation, settings: &Sx126xSettings) -> Result<(), RadioError> {
    let unsupported = |reason: String| RadioError::Unsupported {
        module: ModuleKind::Sx126x.module_name(),
        reason,
    };
    ModuleKind::Sx126x
        .check(m)
        .map_err(|e| unsupported(e.to_string()))?;
    m.validate().map_err(|e| unsupported(e.to_string()))?;
    if settings.chip_power(m.tx_power_dbm).is_none() {
        return Err(unsupported(format!(
            "tx_power_dbm {} at the antenna socket needs {} dBm at the chip (amplifier gain \
             {} dB), outside its {}..={} dBm",
            m.tx_power_dbm,
            i16::from(m.tx_power_dbm) - i16::from(settings.amplifier_gain_db),
            settings.amplifier_gain_db,
            commands::POWER_DBM.start(),
            commands::POWER_DBM.end()
        )));
    }
    commands::modulation_params(m)
        .map(drop)
        .ok_or_else(|| unsupported("no SX126x code for this SF, bandwidth or coding rate".into()))
}

/// The driver's steps in the SX126x's commands.
struct Sx126x<S, B, D, O> {
    chip: Chip<S, B, D, O>,
    settings: Sx126xSettings,
}

impl<S, B, D, O> Transceiver for Sx126x<S, B, D, O>
where
    S: SpiDevice,
    B: InputPin + Wait,
    D: Wait,
    O: OutputPin,
{
    const NAME: &'static str = "SX126x";
    const IRQ_LINE: &'static str = "DIO1";

    fn listens_before_talk(&self) -> bool {
        self.settings.listen_before_talk
    }

    /// Reset, regulator, TCXO, RF switch, the PA clamp erratum and LoRa packets.
    async fn init(&mut self) -> Result<(), RadioError> {
        self.chip.reset().await?;
        let status = self.chip.status("reset").await?;
        if status.mode != ChipMode::StandbyRc {
            return Err(RadioError::Protocol(format!(
                "SX126x is in {:?} after a reset, not standby",
                status.mode
            )));
        }
        let c = &mut self.chip;
        c.command(op::SET_STANDBY, &[commands::STANDBY_RC]).await?;
        if self.settings.dcdc {
            c.command(op::SET_REGULATOR_MODE, &[0x01]).await?;
        }
        if let Some(v) = self.settings.tcxo {
            let [a, b, d] = commands::timer_steps(TCXO_STARTUP_US);
            c.command(op::SET_DIO3_AS_TCXO, &[v.code(), a, b, d])
                .await?;
            // The chip ran its start-up calibration on the RC clock: run it again on the
            // TCXO, and clear the oscillator start error the missing TCXO raised at power-on.
            c.command(op::CALIBRATE, &[commands::CALIBRATE_ALL]).await?;
            c.command(op::CLEAR_DEVICE_ERRORS, &[0x00, 0x00]).await?;
        }
        if self.settings.dio2_rf_switch {
            c.command(op::SET_DIO2_AS_RF_SWITCH, &[0x01]).await?;
        }
        // Errata (datasheet §15.2): clamp the PA against an antenna mismatch, once per reset.
        let clamp = c.read_register(commands::REG_TX_CLAMP, 1).await?[0];
        c.write_register(commands::REG_TX_CLAMP, &[clamp | 0x1E])
            .await?;
        c.command(op::SET_PACKET_TYPE, &[commands::PACKET_TYPE_LORA])
            .await?;
        c.command(op::SET_BUFFER_BASE_ADDRESS, &[0x00, 0x00])
            .await?;
        c.status("initialisation").await.map(drop)
    }

    /// Reads the sync word back, so that a modulation that did not reach the chip is an
    /// error, not a deaf radio.
    async fn apply(&mut self, m: &Modulation) -> Result<(), RadioError> {
        check(m, &self.settings)?;
        let power = self.settings.chip_power(m.tx_power_dbm).expect("checked");
        let c = &mut self.chip;
        c.command(
            op::SET_RF_FREQUENCY,
            &commands::frequency_steps(m.frequency_hz).to_be_bytes(),
        )
        .await?;
        c.command(
            op::CALIBRATE_IMAGE,
            &commands::image_calibration(m.frequency_hz),
        )
        .await?;
        c.command(op::SET_PA_CONFIG, &commands::PA_CONFIG_SX1262)
            .await?;
        c.command(op::SET_TX_PARAMS, &[power as u8, commands::RAMP_200_US])
            .await?;
        let params = commands::modulation_params(m).expect("checked");
        c.command(op::SET_MODULATION_PARAMS, &params).await?;
        // Errata (datasheet §15.1 and §15.4): the 500 kHz modulation bit, and the IQ bit for
        // standard IQ.
        let quality = c.read_register(commands::REG_TX_MODULATION, 1).await?[0];
        let quality = match m.bandwidth_hz {
            500_000 => quality & !0x04,
            _ => quality | 0x04,
        };
        c.write_register(commands::REG_TX_MODULATION, &[quality])
            .await?;
        let iq = c.read_register(commands::REG_IQ_POLARITY, 1).await?[0];
        c.write_register(commands::REG_IQ_POLARITY, &[iq | 0x04])
            .await?;
        let sync = commands::sync_word_register(m.sync_word);
        c.write_register(commands::REG_LORA_SYNC_WORD, &sync)
            .await?;
        let mask = irq::DRIVER_MASK.to_be_bytes();
        c.command(
            op::SET_DIO_IRQ_PARAMS,
            &[mask[0], mask[1], mask[0], mask[1], 0, 0, 0, 0],
        )
        .await?;
        let back = c.read_register(commands::REG_LORA_SYNC_WORD, 2).await?;
        if back != sync {
            return Err(RadioError::Protocol(format!(
                "SX126x sync word register reads {back:02X?} after writing {sync:02X?}"
            )));
        }
        c.status("configuration").await?;
        self.receive(m).await
    }

    async fn standby(&mut self) -> Result<(), RadioError> {
        self.chip
            .command(op::SET_STANDBY, &[commands::STANDBY_RC])
            .await?;
        self.chip.antenna(Antenna::Off)
    }

    async fn receive(&mut self, m: &Modulation) -> Result<(), RadioError> {
        let c = &mut self.chip;
        c.command(
            op::SET_PACKET_PARAMS,
            &commands::packet_params(m.preamble_symbols, MAX_PAYLOAD as u8),
        )
        .await?;
        c.antenna(Antenna::Rx)?;
        let [_, a, b, d] = commands::RX_CONTINUOUS.to_be_bytes();
        c.command(op::SET_RX, &[a, b, d]).await
    }

    async fn wait_irq(&mut self) -> Result<(), RadioError> {
        self.chip.wait_irq().await
    }

    async fn take_irqs(&mut self) -> Result<Irqs, RadioError> {
        let flags = self.chip.take_irq().await?;
        let failed = flags & (irq::CRC_ERR | irq::HEADER_ERR) != 0;
        let mut irqs = Irqs {
            packet_ended: failed || flags & irq::RX_DONE != 0,
            cad: (flags & irq::CAD_DONE != 0).then_some(flags & irq::CAD_DETECTED != 0),
            tx_done: flags & irq::TX_DONE != 0,
            tx_timeout: flags & irq::TIMEOUT != 0,
            ..Irqs::default()
        };
        if irqs.packet_ended && !failed {
            irqs.received = Some(self.read_packet().await?);
        }
        Ok(irqs)
    }

    async fn start_cad(&mut self, m: &Modulation) -> Result<Duration, RadioError> {
        let c = &mut self.chip;
        c.antenna(Antenna::Rx)?;
        // Detection peak SF + 13 and minimum 10: common starting values for a 4-symbol CAD;
        // exit mode 0 (CAD only: back to standby), no timeout.
        c.command(
            op::SET_CAD_PARAMS,
            &[CAD_SYMBOLS_CODE, m.spreading_factor + 13, 10, 0x00, 0, 0, 0],
        )
        .await?;
        c.command(op::SET_CAD, &[]).await?;
        Ok(m.symbol_time() * (CAD_SYMBOLS + 2))
    }

    async fn start_tx(&mut self, m: &Modulation, frame: &[u8]) -> Result<(), RadioError> {
        let c = &mut self.chip;
        let mut write = vec![0x00];
        write.extend_from_slice(frame);
        c.command(op::WRITE_BUFFER, &write).await?;
        c.command(
            op::SET_PACKET_PARAMS,
            &commands::packet_params(m.preamble_symbols, frame.len() as u8),
        )
        .await?;
        c.antenna(Antenna::Tx)?;
        // No chip timeout: the driver bounds the wait for TxDone.
        c.command(op::SET_TX, &[0, 0, 0]).await
    }

    /// Standby, then sleep (cold start: the next use resets the chip anyway).
    async fn sleep(&mut self) -> Result<(), RadioError> {
        self.standby().await?;
        self.chip.command(op::SET_SLEEP, &[0x00]).await
    }
}

impl<S, B, D, O> Sx126x<S, B, D, O>
where
    S: SpiDevice,
    B: InputPin + Wait,
    D: Wait,
    O: OutputPin,
{
    /// The packet that RxDone announced, from the buffer, with its signal.
    async fn read_packet(&mut self) -> Result<RxFrame, RadioError> {
        let (_, data) = self.chip.read(op::GET_RX_BUFFER_STATUS, &[], 2).await?;
        let (len, start) = (usize::from(data[0]), data[1]);
        let (_, payload) = self.chip.read(op::READ_BUFFER, &[start], len).await?;
        let payload = payload.to_vec();
        let (_, status) = self.chip.read(op::GET_PACKET_STATUS, &[], 3).await?;
        // RssiPkt = -value/2 dBm, SnrPkt = signed value/4 dB (datasheet §13.5.3).
        Ok(RxFrame {
            payload,
            rssi_dbm: Some(-(i16::from(status[0]) / 2)),
            snr_db: Some(f32::from(status[1] as i8) / 4.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_profile_gives_tcxo_rf_switch_and_amplifier() {
        use lorabridge_hardware::BoardProfile;
        let board = BoardProfile::builtin("rak6421-rak13300").expect("profile");
        let s = Sx126xSettings::from_board(&board);
        assert_eq!(s.tcxo, Some(TcxoVoltage::V1_8));
        assert!(s.dio2_rf_switch);
        assert_eq!((s.amplifier_gain_db, s.chip_power(22)), (0, Some(22)));
        assert_eq!(s.chip_power(23), None);
        let board = BoardProfile::builtin("meshadv-pi").expect("profile");
        let s = Sx126xSettings::from_board(&board);
        assert!(!s.dio2_rf_switch);
        // The E22-900M30S: 30 dBm at the socket is the chip's 22.
        assert_eq!(s.amplifier_gain_db, 8);
        assert_eq!((s.chip_power(30), s.chip_power(14)), (Some(22), Some(6)));
        assert_eq!(s.chip_power(-2), None);
        let mini = BoardProfile::builtin("meshadv-mini").expect("profile");
        assert_eq!(Sx126xSettings::from_board(&mini).amplifier_gain_db, 0);
    }

    #[test]
    fn the_check_refuses_what_the_chip_cannot_do() {
        let m = Modulation::eu868_default();
        let plain = Sx126xSettings::default();
        assert_eq!(check(&m, &plain), Ok(()));
        let meshtastic = Modulation {
            sync_word: 0x2B,
            ..m
        };
        assert_eq!(check(&meshtastic, &plain), Ok(()));
        let amplified = Sx126xSettings {
            amplifier_gain_db: 8,
            ..plain
        };
        let loud = Modulation {
            tx_power_dbm: 27,
            ..m
        };
        assert_eq!(check(&loud, &amplified), Ok(()));
        assert!(check(&loud, &plain).is_err());
        for bad in [
            Modulation {
                tx_power_dbm: 23,
                ..m
            },
            Modulation {
                bandwidth_hz: 100_000,
                ..m
            },
            Modulation {
                spreading_factor: 4,
                ..m
            },
        ] {
            assert!(
                matches!(check(&bad, &plain), Err(RadioError::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }
}
