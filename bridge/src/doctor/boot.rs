//! The Raspberry Pi's boot files: whether the UART and SPI are switched on in `config.txt`,
//! and whether the kernel console sits on the UART (`cmdline.txt`, a serial getty).
//!
//! Raspberry Pi OS keeps these in `/boot/firmware` since Bookworm and in `/boot` before.
//! Settings under a `[pi4]`-style filter count as set: the doctor cannot tell which model it
//! reads the card of, and a steward who wrote the filter meant it for this Pi.

use std::path::{Path, PathBuf};

/// What the boot files say, read once.
#[derive(Debug, Default)]
pub struct BootFiles {
    /// The folder the files were found in, for messages.
    pub dir: PathBuf,
    /// `config.txt`'s settings, `None` when there is no such file (not a Pi, or not mounted).
    config: Option<String>,
    /// `cmdline.txt`'s kernel arguments.
    cmdline: Option<String>,
}

/// The device names (after `/dev/`) of the Pi's own UARTs, as the console or a module can
/// sit on them.
pub fn is_pi_uart(device: &Path) -> bool {
    let name = device.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("serial") || name.starts_with("ttyAMA") || name == "ttyS0"
}

impl BootFiles {
    /// Reads the boot files under `root`, preferring `boot/firmware` (Bookworm and later).
    pub fn read(root: &Path) -> Self {
        let firmware = root.join("boot/firmware");
        let dir = if firmware.join("config.txt").exists() {
            firmware
        } else {
            root.join("boot")
        };
        Self {
            config: std::fs::read_to_string(dir.join("config.txt")).ok(),
            cmdline: std::fs::read_to_string(dir.join("cmdline.txt")).ok(),
            dir,
        }
    }

    /// `None` without a `config.txt`; else whether the UART is on (`enable_uart=1`, or on a
    /// Pi 5 `dtparam=uart0=on`).
    pub fn uart_enabled(&self) -> Option<bool> {
        let config = self.config.as_deref()?;
        Some(
            settings(config).any(|(key, value)| key == "enable_uart" && value == "1")
                || dtparam_on(config, "uart0"),
        )
    }

    /// `None` without a `config.txt`; else whether `dtparam=spi=on` is set.
    pub fn spi_enabled(&self) -> Option<bool> {
        Some(dtparam_on(self.config.as_deref()?, "spi"))
    }

    /// The kernel argument that puts the console on a Pi UART (e.g. `console=serial0,115200`),
    /// if there is one; `None` too when there is no `cmdline.txt`.
    pub fn uart_console(&self) -> Option<&str> {
        self.cmdline.as_deref()?.split_whitespace().find(|arg| {
            arg.strip_prefix("console=")
                .map(|spec| spec.split(',').next().unwrap_or(""))
                .is_some_and(|device| is_pi_uart(Path::new(device)))
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.txt")
    }

    pub fn cmdline_path(&self) -> PathBuf {
        self.dir.join("cmdline.txt")
    }

    pub fn has_config(&self) -> bool {
        self.config.is_some()
    }
}

/// A serial getty that systemd starts on a Pi UART (`serial-getty@ttyS0.service` enabled),
/// which would read and answer the module's bytes as a login prompt.
pub fn uart_getty(root: &Path) -> Option<String> {
    let wants = std::fs::read_dir(root.join("etc/systemd/system/getty.target.wants")).ok()?;
    wants
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find(|unit| {
            unit.strip_prefix("serial-getty@")
                .and_then(|rest| rest.strip_suffix(".service"))
                .is_some_and(|device| is_pi_uart(Path::new(device)))
        })
}

/// `key=value` settings of `config.txt`, comments and filter lines left out.
fn settings(config: &str) -> impl Iterator<Item = (&str, &str)> {
    config
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim()))
}

/// Whether a `dtparam=` line switches `param` on: `dtparam=spi=on`, `dtparam=spi`, or one of a
/// comma list (`dtparam=i2c_arm=on,spi=on`). The last mention wins, as the firmware reads it.
fn dtparam_on(config: &str, param: &str) -> bool {
    let mut on = false;
    for (key, value) in settings(config) {
        if key != "dtparam" {
            continue;
        }
        for item in value.split(',') {
            let (name, state) = item.split_once('=').unwrap_or((item, "on"));
            if name.trim() == param {
                on = matches!(state.trim(), "on" | "true" | "yes" | "1");
            }
        }
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(config: &str, cmdline: &str) -> BootFiles {
        BootFiles {
            dir: PathBuf::from("/boot/firmware"),
            config: Some(config.into()),
            cmdline: Some(cmdline.into()),
        }
    }

    #[test]
    fn uart_and_spi_are_read_from_config_txt() {
        let b = boot("# enable_uart=1\ndtparam=audio=on\n", "");
        assert_eq!(
            (b.uart_enabled(), b.spi_enabled()),
            (Some(false), Some(false))
        );
        let b = boot("[all]\nenable_uart=1\ndtparam=i2c_arm=on,spi=on\n", "");
        assert_eq!(
            (b.uart_enabled(), b.spi_enabled()),
            (Some(true), Some(true))
        );
        let b = boot("dtparam=uart0\ndtparam=spi=on\ndtparam=spi=off\n", "");
        assert_eq!(
            (b.uart_enabled(), b.spi_enabled()),
            (Some(true), Some(false))
        );
        let none = BootFiles::default();
        assert_eq!((none.uart_enabled(), none.spi_enabled()), (None, None));
    }

    #[test]
    fn the_console_is_found_on_any_pi_uart_only() {
        let b = boot(
            "",
            "console=serial0,115200 console=tty1 root=PARTUUID=1 rootwait",
        );
        assert_eq!(b.uart_console(), Some("console=serial0,115200"));
        assert_eq!(
            boot("", "console=ttyAMA0,115200").uart_console(),
            Some("console=ttyAMA0,115200")
        );
        assert_eq!(
            boot("", "console=tty1 root=/dev/mmcblk0p2").uart_console(),
            None
        );
        assert_eq!(boot("", "console=ttyUSB0").uart_console(), None);
    }

    #[test]
    fn pi_uarts_are_told_from_usb_serial() {
        for uart in [
            "/dev/serial0",
            "/dev/ttyAMA0",
            "/dev/ttyS0",
            "/dev/ttyAMA10",
        ] {
            assert!(is_pi_uart(Path::new(uart)), "{uart}");
        }
        for usb in ["/dev/ttyUSB0", "/dev/ttyACM0", "/dev/spidev0.0"] {
            assert!(!is_pi_uart(Path::new(usb)), "{usb}");
        }
    }
}
