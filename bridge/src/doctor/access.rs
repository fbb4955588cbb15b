//! Who may open a device node: the service user as `/etc/passwd` and `/etc/group` describe it,
//! against the node's owner, group and mode.
//!
//! The service runs as its own user, not as the steward who types `sudo lorabridge doctor`, so
//! a port that opens for root can still be closed to the bridge. The check reads the files
//! rather than asking the kernel, so that it works on a fake tree in tests.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A user and every group it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// The primary group first, then the groups that list the user as a member.
    pub gids: Vec<u32>,
}

/// The groups of a system, by id.
#[derive(Debug, Default)]
pub struct Groups(Vec<(String, u32, Vec<String>)>);

impl Groups {
    /// Reads `etc/group` under `root`; a missing file gives no groups.
    pub fn read(root: &Path) -> Self {
        let text = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
        Self(
            text.lines()
                .filter_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?.to_string();
                    let gid = fields.nth(1)?.parse().ok()?;
                    let members = fields.next().unwrap_or("");
                    let members = members
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect();
                    Some((name, gid, members))
                })
                .collect(),
        )
    }

    /// The group's name, or its number when no line names it.
    pub fn name(&self, gid: u32) -> String {
        self.0
            .iter()
            .find(|(_, id, _)| *id == gid)
            .map_or_else(|| gid.to_string(), |(name, _, _)| name.clone())
    }

    fn of_member(&self, user: &str) -> impl Iterator<Item = u32> {
        self.0
            .iter()
            .filter(move |(_, _, members)| members.iter().any(|m| m == user))
            .map(|(_, gid, _)| *gid)
    }
}

/// Looks `name` up in `etc/passwd` under `root`, with its groups.
pub fn find_user(root: &Path, name: &str, groups: &Groups) -> Option<User> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    let line = passwd
        .lines()
        .find(|line| line.split(':').next() == Some(name))?;
    let mut fields = line.split(':').skip(2);
    let uid = fields.next()?.parse().ok()?;
    let primary = fields.next()?.parse().ok()?;
    let mut gids = vec![primary];
    gids.extend(groups.of_member(name).filter(|gid| *gid != primary));
    Some(User {
        name: name.to_string(),
        uid,
        gids,
    })
}

/// Why `user` cannot read and write `path`, with the fix; `Ok` when it can.
pub fn read_write(path: &Path, user: &User, groups: &Groups) -> Result<(), (String, String)> {
    let meta = std::fs::metadata(path).map_err(|e| {
        (
            format!("{} cannot be opened: {e}", path.display()),
            "check the device name, that the module is plugged in, and that the interface \
             is switched on (see the checks above)"
                .to_string(),
        )
    })?;
    let mode = meta.mode();
    let can = |bits: u32| mode & bits == bits;
    if user.uid == 0
        || (meta.uid() == user.uid && can(0o600))
        || (user.gids.contains(&meta.gid()) && can(0o060))
        || can(0o006)
    {
        return Ok(());
    }
    let group = groups.name(meta.gid());
    let detail = format!(
        "{} (group {group}, mode {:03o}) is closed to user {}",
        path.display(),
        mode & 0o777,
        user.name
    );
    let fix = if can(0o060) {
        format!(
            "sudo usermod -aG {group} {}, then sudo systemctl restart lorabridge",
            user.name
        )
    } else {
        format!(
            "its group {group} may not write it either: add a udev rule that gives it mode \
             0660 (e.g. MODE=\"0660\", GROUP=\"dialout\"), then add {} to that group",
            user.name
        )
    };
    Err((detail, fix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree(passwd: &str, group: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
        std::fs::write(dir.path().join("etc/passwd"), passwd).expect("passwd");
        std::fs::write(dir.path().join("etc/group"), group).expect("group");
        dir
    }

    #[test]
    fn a_user_has_its_primary_and_member_groups() {
        let root = tree(
            "root:x:0:0::/root:/bin/sh\nlorabridge:x:998:997::/var/lib/lorabridge:/usr/sbin/nologin\n",
            "dialout:x:20:pi,lorabridge\nlorabridge:x:997:\ngpio:x:993:pi\n",
        );
        let groups = Groups::read(root.path());
        let user = find_user(root.path(), "lorabridge", &groups).expect("user");
        assert_eq!((user.uid, user.gids), (998, vec![997, 20]));
        assert_eq!(find_user(root.path(), "nobody", &groups), None);
        assert_eq!(
            (groups.name(993), groups.name(4242)),
            ("gpio".into(), "4242".into())
        );
    }

    #[test]
    fn access_follows_owner_group_and_other_bits() {
        let root = tree("", "");
        let node = root.path().join("ttyS0");
        std::fs::write(&node, "").expect("node");
        let meta = std::fs::metadata(&node).expect("meta");
        let groups = Groups(vec![("dialout".into(), meta.gid(), vec![])]);
        let stranger = User {
            name: "lorabridge".into(),
            uid: meta.uid() + 1,
            gids: vec![meta.gid() + 1],
        };
        let set = |mode| std::fs::set_permissions(&node, std::fs::Permissions::from_mode(mode));
        set(0o660).expect("chmod");
        let (detail, fix) = read_write(&node, &stranger, &groups).expect_err("closed");
        assert!(detail.contains("group dialout, mode 660"), "{detail}");
        assert!(
            fix.starts_with("sudo usermod -aG dialout lorabridge"),
            "{fix}"
        );
        let member = User {
            gids: vec![meta.gid()],
            ..stranger.clone()
        };
        assert_eq!(read_write(&node, &member, &groups), Ok(()));
        set(0o600).expect("chmod");
        let (_, fix) = read_write(&node, &member, &groups).expect_err("group may not write");
        assert!(fix.contains("udev rule"), "{fix}");
        set(0o666).expect("chmod");
        assert_eq!(read_write(&node, &stranger, &groups), Ok(()));
        let missing = read_write(&root.path().join("ttyUSB9"), &stranger, &groups);
        assert!(missing.expect_err("missing").0.contains("cannot be opened"));
    }
}
