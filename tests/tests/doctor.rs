//! `lorabridge doctor` on fake Raspberry Pi trees (`/boot/firmware`, `/etc`, `/dev`), with a
//! real serial driver asking an emulated module behind the tree's device node.
//!
//! Each test builds the tree a steward's Pi would have, runs every check, and asserts what
//! the doctor found and the fix it printed.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lorabridge::doctor::{Doctor, Finding, Gpio, Outcome, Subject, render};
use lorabridge_emulators::{E22Pins, Emulator, Hub, Medium, Sx1262, Sx1276};
use lorabridge_radio::e22::cdev::{LineUse, PinLines};
use lorabridge_radio::e22::{ModePins, PinError};
use lorabridge_radio::sx126x::Sx126xSettings;
use lorabridge_radio::sx126x::linux::SpiLines;
use lorabridge_radio::sx127x::linux::Sx127xLines;
use lorabridge_radio::{
    DriverConfig, Radio, RadioError, RadioFuture, Sx127xSettings, sx126x, sx127x,
};

/// A Pi's files under a temp dir.
struct Pi {
    dir: tempfile::TempDir,
}

impl Pi {
    fn new() -> Self {
        let pi = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for sub in ["boot/firmware", "etc", "dev"] {
            std::fs::create_dir_all(pi.root().join(sub)).expect("tree");
        }
        pi.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
        pi.write("etc/group", "root:x:0:\n");
        pi
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.root().join(file), text).expect("write");
    }

    /// The service user, in the group that `gid` names (`dialout` on a Pi).
    fn service_user_in(&self, group: &str, gid: u32) {
        self.write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n\
             lorabridge:x:64998:64997::/var/lib/lorabridge:/usr/sbin/nologin\n",
        );
        self.write(
            "etc/group",
            &format!("root:x:0:\nlorabridge:x:64997:\n{group}:x:{gid}:pi,lorabridge\n"),
        );
    }

    fn config(&self, radio: &str) -> PathBuf {
        let path = self.root().join("bridge.toml");
        let region = format!(
            "[[regions]]\nid = \"{}\"\napps = [\"chat\"]\n",
            "ab".repeat(32)
        );
        std::fs::write(&path, format!("network = \"lores\"\n{region}{radio}")).expect("config");
        path
    }

    async fn examine(&self, gpio: &dyn Gpio, subject: Subject) -> Vec<Finding> {
        let doctor = Doctor {
            root: self.root().to_path_buf(),
            user: "lorabridge".into(),
            gpio: Some(gpio),
            answer_timeout: Duration::from_millis(500),
        };
        tokio::time::timeout(Duration::from_secs(30), doctor.examine(&subject))
            .await
            .expect("the doctor finishes")
    }
}

/// GPIO lines as a test says the kernel holds them, an emulated E22's mode pins, and an
/// emulated SX1262 or SX1276 on the SPI HAT.
struct Lines(
    HashMap<String, LineUse>,
    Option<E22Pins>,
    Option<Sx1262>,
    Option<Sx1276>,
);

impl Lines {
    fn all_free(chip: &Path, names: &[&str]) -> Self {
        Self(
            names
                .iter()
                .map(|n| {
                    let free = LineUse {
                        chip: chip.to_path_buf(),
                        held_by: None,
                    };
                    (n.to_string(), free)
                })
                .collect(),
            None,
            None,
            None,
        )
    }
}

impl Gpio for Lines {
    fn find(&self, name: &str) -> Option<LineUse> {
        self.0.get(name).cloned()
    }

    fn mode_pins(&self, lines: &PinLines) -> Result<Box<dyn ModePins>, PinError> {
        match &self.1 {
            Some(pins) => Ok(Box::new(pins.clone())),
            None => Err(PinError {
                line: format!("{:?}", lines.m0),
                reason: "no E22 in this test".into(),
            }),
        }
    }

    fn ask_sx126x<'a>(
        &'a self,
        spidev: &'a Path,
        _lines: &'a SpiLines,
        settings: Sx126xSettings,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            let Some(chip) = &self.2 else {
                return Err(RadioError::Port {
                    path: spidev.display().to_string(),
                    reason: "no SX1262 in this test".into(),
                });
            };
            sx126x::open(chip.bus(true), settings, cfg)
                .await?
                .shutdown()
                .await
        })
    }

    fn ask_sx127x<'a>(
        &'a self,
        spidev: &'a Path,
        _lines: &'a Sx127xLines,
        cfg: DriverConfig,
    ) -> RadioFuture<'a, Result<(), RadioError>> {
        Box::pin(async move {
            let Some(chip) = &self.3 else {
                return Err(RadioError::Port {
                    path: spidev.display().to_string(),
                    reason: "no SX1276 in this test".into(),
                });
            };
            sx127x::open(chip.bus(), Sx127xSettings::default(), cfg)
                .await?
                .shutdown()
                .await
        })
    }
}

fn outcome<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} check in:\n{}", render(findings)))
}

fn fails(findings: &[Finding]) -> Vec<&'static str> {
    findings
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
        .map(|f| f.check)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_pi_with_a_rak3172_on_the_uart_passes_and_the_module_answers() {
    let pi = Pi::new();
    pi.write("boot/firmware/config.txt", "[all]\nenable_uart=1\n");
    pi.write(
        "boot/firmware/cmdline.txt",
        "console=tty1 root=PARTUUID=abc rootwait\n",
    );
    // The module sits behind the tree's /dev/ttyS0: a link to an emulated RAK3172's pty.
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let emu = Emulator::rui3(medium, &pi.root().join("dev"), "ttyS0").expect("emulator");
    let tty = emu.tty_path().expect("pty");
    std::fs::set_permissions(&tty, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    pi.service_user_in("dialout", std::fs::metadata(&tty).expect("pty").gid());
    let config = pi.config("[radio]\ndriver = \"rui3\"\nport = \"/dev/ttyS0\"\n");

    let findings = pi
        .examine(
            &Lines(HashMap::new(), None, None, None),
            Subject::Config(config),
        )
        .await;
    let report = render(&findings);
    assert_eq!(fails(&findings), Vec::<&str>::new(), "{report}");
    assert!(
        outcome(&findings, "config")
            .detail
            .contains("869525000 Hz at 14 dBm is legal in EU868"),
        "{report}"
    );
    for check in ["service user", "UART", "serial console", "device", "module"] {
        assert_eq!(
            outcome(&findings, check).outcome,
            Outcome::Ok,
            "{check}:\n{report}"
        );
    }
    assert!(
        outcome(&findings, "module")
            .detail
            .contains("RUI_4.0.6_RAK3172-E"),
        "the real driver asked the module:\n{report}"
    );
    assert!(
        report.ends_with("Everything checked is ready.\n"),
        "{report}"
    );

    // A module that stops answering is a failure with a fix, and nothing else changes.
    emu.set_silent(true);
    let findings = pi
        .examine(
            &Lines(HashMap::new(), None, None, None),
            Subject::Config(pi.root().join("bridge.toml")),
        )
        .await;
    assert_eq!(fails(&findings), vec!["module"], "{}", render(&findings));
    let module = outcome(&findings, "module");
    assert!(module.detail.contains("no answer on"), "{}", module.detail);
    assert!(
        module
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("lorabridge radio probe")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_pi_with_the_waveshare_e22_hat_gets_a_fix_for_each_problem() {
    let pi = Pi::new();
    // As Raspberry Pi OS ships: UART off, the console on serial0, a login prompt on ttyS0.
    pi.write(
        "boot/firmware/config.txt",
        "dtparam=audio=on\n# enable_uart=1\n",
    );
    pi.write(
        "boot/firmware/cmdline.txt",
        "console=serial0,115200 console=tty1 root=PARTUUID=abc rootwait\n",
    );
    std::fs::create_dir_all(pi.root().join("etc/systemd/system/getty.target.wants"))
        .expect("wants");
    pi.write(
        "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
        "",
    );
    let config = pi.config("[radio]\nboard = \"waveshare-sx1262-hat\"\n");

    let findings = pi
        .examine(
            &Lines(HashMap::new(), None, None, None),
            Subject::Config(config.clone()),
        )
        .await;
    let report = render(&findings);
    assert_eq!(
        fails(&findings),
        vec![
            "service user",
            "UART",
            "serial console",
            "device",
            "GPIO lines"
        ],
        "{report}"
    );
    assert_eq!(
        outcome(&findings, "module").outcome,
        Outcome::Skip,
        "{report}"
    );
    let fix = |check| outcome(&findings, check).fix.clone().unwrap_or_default();
    assert!(
        fix("UART").contains("raspi-config nonint do_serial_hw 0"),
        "{report}"
    );
    assert!(
        fix("serial console").contains("do_serial_cons 1"),
        "{report}"
    );
    assert!(fix("service user").contains("adduser --system"), "{report}");
    assert!(report.contains("5 of 7 checks failed."), "{report}");

    // The steward follows the fixes; another program still holds M0.
    pi.write(
        "boot/firmware/config.txt",
        "dtparam=audio=on\nenable_uart=1\n",
    );
    pi.write(
        "boot/firmware/cmdline.txt",
        "console=tty1 root=PARTUUID=abc rootwait\n",
    );
    std::fs::remove_file(
        pi.root()
            .join("etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"),
    )
    .expect("disable getty");
    let node = pi.root().join("dev/ttyS0");
    std::fs::write(&node, "").expect("node");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    let chip = pi.root().join("dev/gpiochip0");
    std::fs::write(&chip, "").expect("chip");
    std::fs::set_permissions(&chip, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    let gid = std::fs::metadata(&node).expect("node").gid();
    pi.service_user_in("dialout", gid);
    let mut lines = Lines::all_free(&chip, &["GPIO22", "GPIO27"]);
    lines.0.get_mut("GPIO22").expect("M0").held_by = Some("meshtasticd".into());

    let findings = pi.examine(&lines, Subject::Config(config.clone())).await;
    let report = render(&findings);
    assert_eq!(fails(&findings), vec!["GPIO lines"], "{report}");
    let gpio = outcome(&findings, "GPIO lines");
    assert!(
        gpio.detail
            .contains("GPIO22 (M0) is held by \"meshtasticd\""),
        "{report}"
    );
    assert!(
        gpio.fix
            .as_deref()
            .unwrap_or("")
            .contains("systemctl disable --now meshtasticd"),
        "{report}"
    );

    // With the lines free, the real E22 driver asks an emulated E22 on the tree's ttyS0
    // through its mode pins, and every check passes.
    std::fs::remove_file(&node).expect("node");
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    let (emu, pins) = Emulator::e22(medium, &pi.root().join("dev"), "ttyS0").expect("emulator");
    let tty = emu.tty_path().expect("pty");
    std::fs::set_permissions(&tty, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    pi.service_user_in("dialout", std::fs::metadata(&tty).expect("pty").gid());
    let mut lines = Lines::all_free(&chip, &["GPIO22", "GPIO27"]);
    lines.1 = Some(pins);
    let findings = pi.examine(&lines, Subject::Config(config)).await;
    let report = render(&findings);
    assert_eq!(fails(&findings), Vec::<&str>::new(), "{report}");
    assert_eq!(
        outcome(&findings, "GPIO lines").detail,
        "free: GPIO22 (M0), GPIO27 (M1)",
        "{report}"
    );
    assert_eq!(
        outcome(&findings, "module").outcome,
        Outcome::Ok,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_closed_to_the_service_user_names_the_group_to_join() {
    let pi = Pi::new();
    pi.write("boot/firmware/config.txt", "enable_uart=1\n");
    pi.write("boot/firmware/cmdline.txt", "root=PARTUUID=abc\n");
    let node = pi.root().join("dev/ttyAMA0");
    std::fs::write(&node, "").expect("node");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    let gid = std::fs::metadata(&node).expect("node").gid();
    // The user exists but is not in the port's group.
    pi.service_user_in("dialout", 64_000);
    pi.write(
        "etc/group",
        &format!("lorabridge:x:64997:\ndialout:x:{gid}:pi\n"),
    );
    let config = pi.config("[radio]\ndriver = \"rnode\"\nport = \"/dev/ttyAMA0\"\n");
    let findings = pi
        .examine(
            &Lines(HashMap::new(), None, None, None),
            Subject::Config(config),
        )
        .await;
    let report = render(&findings);
    assert_eq!(fails(&findings), vec!["device"], "{report}");
    let device = outcome(&findings, "device");
    assert!(
        device
            .detail
            .contains("(group dialout, mode 660) is closed to user lorabridge"),
        "{report}"
    );
    assert_eq!(
        device.fix.as_deref(),
        Some("sudo usermod -aG dialout lorabridge, then sudo systemctl restart lorabridge")
    );
    assert_eq!(
        outcome(&findings, "module").outcome,
        Outcome::Skip,
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spi_hat_before_any_config_needs_spi_switched_on() {
    let pi = Pi::new();
    pi.write("boot/firmware/config.txt", "dtparam=i2c_arm=on\n");
    pi.service_user_in("spi", 64_100);
    let chip = pi.root().join("dev/gpiochip0");
    std::fs::write(&chip, "").expect("chip");
    std::fs::set_permissions(&chip, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut lines = Lines::all_free(
        &chip,
        &["GPIO21", "GPIO18", "GPIO20", "GPIO16", "GPIO12", "GPIO13"],
    );
    let findings = pi
        .examine(&lines, Subject::Board("meshadv-pi".into()))
        .await;
    let report = render(&findings);
    assert_eq!(fails(&findings), vec!["SPI", "device"], "{report}");
    assert!(
        outcome(&findings, "SPI")
            .fix
            .as_deref()
            .unwrap_or("")
            .contains("do_spi 0"),
        "{report}"
    );
    assert!(
        outcome(&findings, "device")
            .detail
            .contains("dev/spidev0.0 does not exist"),
        "{report}"
    );
    assert_eq!(
        outcome(&findings, "config").outcome,
        Outcome::Skip,
        "{report}"
    );
    assert_eq!(
        outcome(&findings, "GPIO lines").outcome,
        Outcome::Ok,
        "{report}"
    );

    // Switched on, the node there, but no chip answers: the doctor asked it and says so.
    pi.write("boot/firmware/config.txt", "dtparam=i2c_arm=on,spi=on\n");
    let node = pi.root().join("dev/spidev0.0");
    std::fs::write(&node, "").expect("node");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let findings = pi
        .examine(&lines, Subject::Board("meshadv-pi".into()))
        .await;
    let report = render(&findings);
    assert_eq!(fails(&findings), vec!["module"], "{report}");
    assert!(
        outcome(&findings, "module")
            .detail
            .contains("no SX126x answers on"),
        "{report}"
    );

    // With an (emulated) SX1262 on the HAT, the doctor brings it up and puts it to sleep.
    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    lines.2 = Some(Sx1262::new(medium, "hat"));
    let findings = pi
        .examine(&lines, Subject::Board("meshadv-pi".into()))
        .await;
    let report = render(&findings);
    assert_eq!(fails(&findings), Vec::<&str>::new(), "{report}");
    let module = outcome(&findings, "module");
    assert_eq!(module.outcome, Outcome::Ok, "{report}");
    assert!(module.detail.contains("an SX126x answers"), "{report}");
    let chip = lines.2.as_ref().expect("chip").view();
    assert_eq!(
        chip.mode,
        lorabridge_emulators::sx126x::Mode::Sleep,
        "{report}"
    );
    assert_eq!(
        chip.tcxo,
        Some(lorabridge_radio::sx126x::TcxoVoltage::V1_8),
        "the profile's DIO3 TCXO"
    );
    assert_eq!(chip.transmitted, 0, "nothing sent on air");
}

/// An SX1276 HAT (the Dragino: NSS on GPIO25, RESET GPIO17, DIO0 GPIO4): with no chip the
/// module check fails naming the SX127x; with an (emulated) SX1276 the doctor brings it up
/// and puts it to sleep without sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sx127x_hat_is_asked_through_its_lines() {
    let pi = Pi::new();
    pi.write("boot/firmware/config.txt", "dtparam=spi=on\n");
    pi.service_user_in("spi", 64_100);
    let chip = pi.root().join("dev/gpiochip0");
    std::fs::write(&chip, "").expect("chip");
    std::fs::set_permissions(&chip, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let node = pi.root().join("dev/spidev0.0");
    std::fs::write(&node, "").expect("node");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut lines = Lines::all_free(&chip, &["GPIO25", "GPIO17", "GPIO4"]);
    let board = || Subject::Board("dragino-lora-gps-hat".into());
    let findings = pi.examine(&lines, board()).await;
    let report = render(&findings);
    assert_eq!(fails(&findings), vec!["module"], "{report}");
    assert!(
        outcome(&findings, "module")
            .detail
            .contains("no SX127x answers on"),
        "{report}"
    );

    let medium: Arc<dyn Medium> = Arc::new(Hub::new());
    lines.3 = Some(Sx1276::new(medium, "hat"));
    let findings = pi.examine(&lines, board()).await;
    let report = render(&findings);
    assert_eq!(fails(&findings), Vec::<&str>::new(), "{report}");
    let module = outcome(&findings, "module");
    assert_eq!(module.outcome, Outcome::Ok, "{report}");
    assert!(module.detail.contains("an SX127x answers"), "{report}");
    let view = lines.3.as_ref().expect("chip").view();
    assert_eq!(
        (view.lora, view.mode),
        (true, Some(lorabridge_radio::sx127x::registers::Mode::Sleep)),
        "{report}"
    );
    assert_eq!(view.transmitted, 0, "nothing sent on air");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_illegal_channel_fails_the_config_and_checks_nothing_else_on_the_radio() {
    let pi = Pi::new();
    let config = pi.config(
        "[radio]\ndriver = \"rui3\"\nport = \"/dev/ttyUSB0\"\nregion = \"EU868\"\n\
         frequency_hz = 869525000\ntx_power_dbm = 27\n",
    );
    let findings = pi
        .examine(
            &Lines(HashMap::new(), None, None, None),
            Subject::Config(config),
        )
        .await;
    let report = render(&findings);
    let config = outcome(&findings, "config");
    assert_eq!(config.outcome, Outcome::Fail, "{report}");
    assert!(config.detail.contains("radio.tx_power_dbm"), "{report}");
    assert!(
        config.fix.as_deref().unwrap_or("").contains("check-config"),
        "{report}"
    );
    assert_eq!(
        findings.iter().map(|f| f.check).collect::<Vec<_>>(),
        vec!["config", "service user"],
        "{report}"
    );
}
