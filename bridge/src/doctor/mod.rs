//! `lorabridge doctor`: what a Raspberry Pi needs before the bridge can use its LoRa module,
//! checked one thing at a time, with the command that fixes each failure.
//!
//! The checks, in the order a steward fixes them: the config (its channel and power are legal
//! in its region, since loading refuses anything else), the service user, the Pi's UART or
//! SPI switched on and the kernel console off the UART, the device node and its permissions,
//! the GPIO lines free, and last the module answering. A check whose ground a failed one took
//! away is skipped, not failed twice.
//!
//! Files are read under a root folder, `/` on the Pi itself, so that tests run the checks on
//! fake `/boot`, `/etc` and `/dev` trees. GPIO lines and the module are asked for real.

mod access;
mod boot;
mod gpio;
mod probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lorabridge_hardware::BoardProfile;
use lorabridge_radio::ModuleKind;
use lorabridge_radio::e22::cdev::{GpioLine, PinLines};
use lorabridge_radio::sx126x::Sx126xSettings;
use lorabridge_radio::sx126x::linux::SpiLines;
use lorabridge_radio::sx127x::linux::Sx127xLines;

use crate::config::{Config, RadioConfig, Wiring};
use access::{Groups, User};
use boot::BootFiles;
pub use gpio::{Gpio, SystemGpio};

/// Where the Debian package puts the config, and so where the doctor looks by default.
pub const DEFAULT_CONFIG: &str = "/etc/lorabridge/bridge.toml";
/// The system user the packaged service runs as.
pub const DEFAULT_USER: &str = "lorabridge";

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail,
    /// Not applicable here, or impossible after an earlier failure.
    Skip,
}

/// One check's result: what was found, and for a failure how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            outcome: Outcome::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skip(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            outcome: Outcome::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// What the doctor looks at: a config file, or a board before there is a config.
#[derive(Clone, Debug)]
pub enum Subject {
    Config(PathBuf),
    Board(String),
}

/// Where and as whom to check.
pub struct Doctor<'a> {
    /// `/` on the Pi; another folder holds a tree of the same shape.
    pub root: PathBuf,
    /// The user the service runs as.
    pub user: String,
    /// The GPIO lines; `None` where they are not this machine's (another root).
    pub gpio: Option<&'a dyn Gpio>,
    /// How long the module has to answer each command.
    pub answer_timeout: Duration,
}

/// The radio side of the subject: the device, the lines it needs, and how to ask it.
struct Hardware {
    /// The configured device path, e.g. `/dev/serial0`.
    device: PathBuf,
    spi: bool,
    /// (role, line), e.g. ("M0", GPIO22).
    lines: Vec<(&'static str, GpioLine)>,
    ask: Ask,
}

enum Ask {
    Serial {
        driver: ModuleKind,
        baud: u32,
    },
    E22 {
        baud: u32,
        pins: PinLines,
    },
    Sx126x {
        lines: SpiLines,
        settings: Sx126xSettings,
    },
    Sx127x {
        lines: Sx127xLines,
    },
    /// The module has no driver yet; the reason says which.
    NoDriver(String),
}

impl Hardware {
    fn from_config(radio: &RadioConfig) -> Self {
        let (lines, ask) = match &radio.wiring {
            Wiring::Sx126x(spi) => {
                let l = &spi.lines;
                let mut lines = vec![
                    ("RESET", l.reset.clone()),
                    ("BUSY", l.busy.clone()),
                    ("IRQ", l.dio1.clone()),
                ];
                let optional = [
                    ("CS", &l.cs),
                    ("RX enable", &l.rx_enable),
                    ("TX enable", &l.tx_enable),
                ];
                for (role, line) in optional {
                    lines.extend(line.clone().map(|line| (role, line)));
                }
                lines.extend(
                    l.power_enable
                        .iter()
                        .map(|line| ("power enable", line.clone())),
                );
                let ask = Ask::Sx126x {
                    lines: spi.lines.clone(),
                    settings: spi.settings,
                };
                (lines, ask)
            }
            Wiring::E22(e22) => {
                let mut lines = vec![("M0", e22.pins.m0.clone()), ("M1", e22.pins.m1.clone())];
                lines.extend(e22.pins.aux.clone().map(|aux| ("AUX", aux)));
                let ask = Ask::E22 {
                    baud: radio.baud,
                    pins: e22.pins.clone(),
                };
                (lines, ask)
            }
            Wiring::Sx127x(l) => {
                let mut lines = vec![("RESET", l.reset.clone()), ("IRQ", l.dio0.clone())];
                lines.extend(l.cs.clone().map(|cs| ("CS", cs)));
                (lines, Ask::Sx127x { lines: l.clone() })
            }
            Wiring::Serial => {
                let ask = Ask::Serial {
                    driver: radio.driver,
                    baud: radio.baud,
                };
                (Vec::new(), ask)
            }
        };
        Self {
            device: radio.port.clone(),
            spi: matches!(radio.wiring, Wiring::Sx126x(_) | Wiring::Sx127x(_)),
            lines,
            ask,
        }
    }

    fn from_board(board: &BoardProfile) -> Self {
        let lines = board.pins.as_ref().map_or_else(Vec::new, |pins| {
            pins.lines()
                .into_iter()
                .map(|(role, bcm)| (role, GpioLine::bcm(bcm)))
                .collect()
        });
        let ask = match board.module {
            ModuleKind::E22 => match board.pins.as_ref().and_then(PinLines::from_profile) {
                Some(pins) => Ask::E22 {
                    baud: board.baud,
                    pins,
                },
                None => Ask::NoDriver(format!("board {:?} names no M0/M1 pins", board.id)),
            },
            ModuleKind::Sx126x => match board.pins.as_ref() {
                Some(pins) => match SpiLines::from_profile(pins) {
                    Some(lines) => Ask::Sx126x {
                        lines,
                        settings: Sx126xSettings::from_board(board),
                    },
                    None => Ask::NoDriver(format!(
                        "board {:?} names no RESET, BUSY and IRQ lines",
                        board.id
                    )),
                },
                None => Ask::NoDriver(format!("board {:?} names no pins", board.id)),
            },
            ModuleKind::Sx127x => match board.pins.as_ref().and_then(Sx127xLines::from_profile) {
                Some(lines) => Ask::Sx127x { lines },
                None => Ask::NoDriver(format!("board {:?} names no RESET and IRQ lines", board.id)),
            },
            driver => Ask::Serial {
                driver,
                baud: board.baud,
            },
        };
        Self {
            device: PathBuf::from(&board.serial_path),
            spi: board.module.is_spi(),
            lines,
            ask,
        }
    }
}

impl Doctor<'_> {
    /// Runs every check on `subject`, in order.
    pub async fn examine(&self, subject: &Subject) -> Vec<Finding> {
        let mut findings = Vec::new();
        let hardware = match subject {
            Subject::Config(path) if !path.exists() => {
                findings.push(Finding::fail(
                    "config",
                    format!("there is no config file {}", path.display()),
                    "copy /usr/share/doc/lorabridge/bridge.example.toml there and fill it in; \
                     or give --config FILE, or --board NAME to check the Pi for a board first",
                ));
                None
            }
            Subject::Config(path) => match Config::load(path) {
                Err(e) => {
                    findings.push(Finding::fail(
                        "config",
                        e.to_string(),
                        format!(
                            "edit the key it names; `lorabridge check-config --config {}` \
                             checks again",
                            path.display()
                        ),
                    ));
                    None
                }
                Ok(config) => {
                    let radio = config.radio.as_ref();
                    findings.push(Finding::ok("config", config_detail(path, radio)));
                    radio.map(Hardware::from_config)
                }
            },
            Subject::Board(id) => match BoardProfile::builtin(id) {
                Err(e) => {
                    findings.push(Finding::fail(
                        "board",
                        e.to_string(),
                        "name one of the boards listed",
                    ));
                    None
                }
                Ok(board) => {
                    findings.push(Finding::skip(
                        "config",
                        "no config given: give --config to check the channel and power against \
                         the region's rules",
                    ));
                    Some(Hardware::from_board(&board))
                }
            },
        };
        let groups = Groups::read(&self.root);
        let user = access::find_user(&self.root, &self.user, &groups);
        findings.push(match &user {
            Some(u) => Finding::ok("service user", format!("{} (uid {})", u.name, u.uid)),
            None => Finding::fail(
                "service user",
                format!(
                    "no user {:?} in {}",
                    self.user,
                    self.root.join("etc/passwd").display()
                ),
                format!(
                    "install the lorabridge package, which creates it, or: sudo adduser \
                     --system --group --home /var/lib/lorabridge {}",
                    self.user
                ),
            ),
        });
        let Some(hw) = hardware else {
            if findings[0].outcome == Outcome::Ok {
                findings.push(Finding::skip(
                    "radio",
                    "the config has no [radio] table: nothing to check for a radio",
                ));
            }
            return findings;
        };
        let boot = BootFiles::read(&self.root);
        findings.extend(self.interfaces(&hw, &boot));
        let device = self.device(&hw, user.as_ref(), &groups);
        let device_ok = device.outcome == Outcome::Ok;
        findings.push(device);
        let lines = self.lines(&hw, user.as_ref(), &groups);
        let lines_ok = lines.outcome != Outcome::Fail;
        findings.push(lines);
        findings.push(if device_ok && lines_ok {
            self.module(&hw).await
        } else {
            Finding::skip("module", "not asked: fix the device and its lines first")
        });
        findings
    }

    /// The Pi's UART or SPI, and the console that must not sit on the UART.
    fn interfaces(&self, hw: &Hardware, boot: &BootFiles) -> Vec<Finding> {
        let on_uart = !hw.spi && boot::is_pi_uart(&hw.device);
        if !hw.spi && !on_uart {
            return vec![Finding::skip(
                "interface",
                format!(
                    "{} is not on the Pi's UART or SPI (a USB module): nothing to switch on",
                    hw.device.display()
                ),
            )];
        }
        if !boot.has_config() {
            return vec![Finding::fail(
                "interface",
                format!(
                    "no config.txt in {} (is this a Raspberry Pi?)",
                    boot.dir.display()
                ),
                "run the doctor on the Pi, with its boot partition mounted",
            )];
        }
        let config_txt = boot.config_path();
        if hw.spi {
            return vec![match boot.spi_enabled() {
                Some(true) => {
                    Finding::ok("SPI", format!("dtparam=spi=on in {}", config_txt.display()))
                }
                _ => Finding::fail(
                    "SPI",
                    format!("SPI is off: no dtparam=spi=on in {}", config_txt.display()),
                    "sudo raspi-config nonint do_spi 0, then reboot",
                ),
            }];
        }
        let uart = match boot.uart_enabled() {
            Some(true) => Finding::ok("UART", format!("switched on in {}", config_txt.display())),
            _ => Finding::fail(
                "UART",
                format!(
                    "the UART is off: no enable_uart=1 in {}",
                    config_txt.display()
                ),
                "sudo raspi-config nonint do_serial_hw 0, then reboot",
            ),
        };
        let console = match (boot.uart_console(), boot::uart_getty(&self.root)) {
            (Some(arg), _) => Finding::fail(
                "serial console",
                format!(
                    "the kernel console is on the UART ({arg} in {}): it would talk over the module",
                    boot.cmdline_path().display()
                ),
                "sudo raspi-config nonint do_serial_cons 1, then reboot",
            ),
            (None, Some(unit)) => Finding::fail(
                "serial console",
                format!("{unit} runs a login prompt on the UART"),
                format!("sudo systemctl disable --now {unit}"),
            ),
            (None, None) => Finding::ok("serial console", "off the UART"),
        };
        vec![uart, console]
    }

    /// The device node: there, and open to the service user.
    fn device(&self, hw: &Hardware, user: Option<&User>, groups: &Groups) -> Finding {
        let path = self.rooted(&hw.device);
        let Some(user) = user else {
            return match path.exists() {
                true => Finding::skip(
                    "device",
                    "present; whether the service user may open it is unknown without the user",
                ),
                false => Finding::fail(
                    "device",
                    format!("{} does not exist", path.display()),
                    device_fix(hw),
                ),
            };
        };
        if !path.exists() {
            return Finding::fail(
                "device",
                format!("{} does not exist", path.display()),
                device_fix(hw),
            );
        }
        match access::read_write(&path, user, groups) {
            Ok(()) => Finding::ok(
                "device",
                format!("{} is open to {}", path.display(), user.name),
            ),
            Err((detail, fix)) => Finding::fail("device", detail, fix),
        }
    }

    /// The GPIO lines the module needs: on a chip the service user may open, and held by no
    /// other program.
    fn lines(&self, hw: &Hardware, user: Option<&User>, groups: &Groups) -> Finding {
        if hw.lines.is_empty() {
            return Finding::skip("GPIO lines", "the module needs no GPIO lines");
        }
        let Some(gpio) = self.gpio else {
            return Finding::skip(
                "GPIO lines",
                "not checked: the lines are not this machine's",
            );
        };
        let mut free = Vec::new();
        for (role, line) in &hw.lines {
            // A line given by chip and offset is not a Pi header line the doctor can name.
            let GpioLine::Named(name) = line else {
                continue;
            };
            let Some(line) = gpio.find(name) else {
                return Finding::fail(
                    "GPIO lines",
                    format!("no GPIO chip has a line {name} ({role})"),
                    "run the doctor with sudo on the Raspberry Pi the HAT sits on",
                );
            };
            match line.held_by.as_deref() {
                Some("lorabridge") => {
                    return Finding::fail(
                        "GPIO lines",
                        format!("{name} ({role}) is held by a running lorabridge"),
                        "sudo systemctl stop lorabridge, check again, then start it",
                    );
                }
                Some(other) => {
                    return Finding::fail(
                        "GPIO lines",
                        format!("{name} ({role}) is held by {other:?}"),
                        format!(
                            "stop {other:?} (e.g. sudo systemctl disable --now {other}); \
                             two programs cannot drive one radio"
                        ),
                    );
                }
                None => {}
            }
            if let Some(user) = user
                && let Err((detail, fix)) = access::read_write(&line.chip, user, groups)
            {
                return Finding::fail("GPIO lines", detail, fix);
            }
            free.push(format!("{name} ({role})"));
        }
        Finding::ok("GPIO lines", format!("free: {}", free.join(", ")))
    }

    fn rooted(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

fn config_detail(path: &Path, radio: Option<&RadioConfig>) -> String {
    match radio {
        None => format!("{} is valid (no radio)", path.display()),
        Some(r) => format!(
            "{} is valid: {} Hz at {} dBm is legal in {}",
            path.display(),
            r.modulation.frequency_hz,
            r.modulation.tx_power_dbm,
            r.plan.name
        ),
    }
}

fn device_fix(hw: &Hardware) -> String {
    if hw.spi {
        "switch SPI on (see the SPI check) and reboot; the spidev node then appears".into()
    } else if boot::is_pi_uart(&hw.device) {
        "switch the UART on (see the UART check) and reboot".into()
    } else {
        "plug the module in; `ls /dev/serial/by-id/` shows what the Pi sees, and `port` in \
         [radio] names it"
            .into()
    }
}

/// The report: one line per check, the fix under each failure, and a last line that counts.
pub fn render(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        let mark = match f.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        out.push_str(&format!("{mark}  {:width$}  {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("      {:width$}  fix: {fix}\n", ""));
        }
    }
    let failed = findings
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
        .count();
    out.push_str(&match failed {
        0 => "Everything checked is ready.\n".to_string(),
        n => format!("{n} of {} checks failed.\n", findings.len()),
    });
    out
}
