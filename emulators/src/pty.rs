//! A pseudo-terminal the emulator holds the master side of.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// One pty: the master for the emulator, the slave's path for the driver.
///
/// The emulator keeps its own slave descriptor open for the pty's lifetime, so that reading the
/// master never fails with EIO while no driver has the slave open (between reconnects).
/// Dropping the `Pty` closes both descriptors: the driver's reads then fail, as with a USB
/// module pulled out.
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    _slave: OwnedFd,
    path: PathBuf,
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Pty {
    /// Opens a new pty in raw mode (no echo, no line editing, no CR/LF translation).
    pub fn open() -> io::Result<Self> {
        let pty = nix::pty::openpty(None, None).map_err(errno)?;
        let mut t = tcgetattr(pty.slave.as_fd()).map_err(errno)?;
        cfmakeraw(&mut t);
        tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &t).map_err(errno)?;
        let path = nix::unistd::ttyname(pty.slave.as_fd()).map_err(errno)?;
        let flags = fcntl(pty.master.as_fd(), FcntlArg::F_GETFL).map_err(errno)?;
        fcntl(
            pty.master.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(errno)?;
        // SAFETY: the `OwnedFd` is valid and open, moves into the `AsyncFd`, and is neither
        // closed nor replaced until the `AsyncFd` drops it.
        let master = unsafe {
            AsyncFd::register_with_interest(pty.master, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(io::Error::from)?;
        Ok(Self {
            master,
            _slave: pty.slave,
            path,
        })
    }

    /// The slave device, e.g. `/dev/pts/7`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what the driver wrote. Cancel-safe.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd.get_ref().as_fd(), buf).map_err(errno)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all bytes to the driver.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref().as_fd(), bytes).map_err(errno))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}
