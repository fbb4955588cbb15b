//! Checking a parsed scenario: every value against its bounds, each error naming its key.
//!
//! Kept apart from the format's types in the parent module because the checks are long and
//! read as one list of rules; the types read as the format's reference.

use std::time::Duration;

use lorabridge_hardware::RegionPlan;

use super::{MAX_DURATION, MAX_NODES, MAX_OPS, PROTOCOLS, Scenario, ScenarioError, Topology};

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Scenario {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.duration.0.is_zero() || self.duration.0 > MAX_DURATION {
            return Err(invalid("duration", "must be above 0 and at most 7 days"));
        }
        self.validate_radio()?;
        let n = self.node_count();
        if !(1..=MAX_NODES).contains(&n) {
            return Err(invalid(
                "topology",
                format!("needs 1..={MAX_NODES} nodes, has {n}"),
            ));
        }
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(key, format!("must be a positive number, not {v}")))
            }
        };
        match &self.topology {
            Topology::Line { spacing_m, .. } | Topology::Grid { spacing_m, .. } => {
                positive("topology.spacing_m", *spacing_m)?
            }
            Topology::Random {
                width_m, height_m, ..
            } => {
                positive("topology.width_m", *width_m)?;
                positive("topology.height_m", *height_m)?;
            }
            Topology::Positions { nodes } => {
                for (i, p) in nodes.iter().enumerate() {
                    if !p.iter().all(|v| v.is_finite()) {
                        return Err(invalid(format!("topology.nodes[{i}]"), "not finite"));
                    }
                }
            }
            Topology::Table { .. } => {}
        }
        let pl = &self.path_loss;
        positive("path_loss.d0_m", pl.d0_m)?;
        positive("path_loss.exponent", pl.exponent)?;
        if !(pl.pl_d0_db.is_finite() && pl.sigma_db.is_finite() && pl.sigma_db >= 0.0) {
            return Err(invalid(
                "path_loss.sigma_db",
                "pl_d0_db and sigma_db must be finite, sigma_db ≥ 0",
            ));
        }
        let node = |key: String, i: usize| {
            if i < n {
                Ok(())
            } else {
                Err(invalid(key, format!("node {i} does not exist (0..{n})")))
            }
        };
        for (i, link) in self.links.iter().enumerate() {
            node(format!("links[{i}].a"), link.a)?;
            node(format!("links[{i}].b"), link.b)?;
            if link.a == link.b {
                return Err(invalid(format!("links[{i}]"), "a link joins two nodes"));
            }
            if link.loss_db.is_some() == link.rssi_dbm.is_some() {
                return Err(invalid(
                    format!("links[{i}]"),
                    "give exactly one of loss_db and rssi_dbm",
                ));
            }
        }
        if let Some(a) = &self.attacker {
            node("attacker.node".into(), a.node)?;
            if a.interval.0.is_zero() {
                return Err(invalid("attacker.interval", "must be above 0"));
            }
        }
        let t = &self.traffic;
        if let Some(bytes) = t.payload_bytes
            && !(1..=4096).contains(&bytes)
        {
            return Err(invalid("traffic.payload_bytes", "must be 1..=4096"));
        }
        let mut ops = t.preload_ops_per_node.saturating_mul(n);
        for (i, p) in t.publish.iter().enumerate() {
            node(format!("traffic.publish[{i}].node"), p.node)?;
            if !self.honest(p.node) {
                return Err(invalid(
                    format!("traffic.publish[{i}].node"),
                    "the attacker publishes nothing",
                ));
            }
            if p.count > 1 && p.interval.0.is_zero() {
                return Err(invalid(
                    format!("traffic.publish[{i}].interval"),
                    "needed when count > 1",
                ));
            }
            ops = ops.saturating_add(p.count);
        }
        for (i, r) in t.rate.iter().enumerate() {
            if !(r.per_hour.is_finite() && r.per_hour >= 0.0) {
                return Err(invalid(
                    format!("traffic.rate[{i}].per_hour"),
                    "must be ≥ 0",
                ));
            }
            if r.until <= r.from {
                return Err(invalid(
                    format!("traffic.rate[{i}].until"),
                    "must be after from",
                ));
            }
            for &v in r.nodes.iter().flatten() {
                node(format!("traffic.rate[{i}].nodes"), v)?;
                if !self.honest(v) {
                    return Err(invalid(
                        format!("traffic.rate[{i}].nodes"),
                        "the attacker publishes nothing",
                    ));
                }
            }
            let nodes = r.nodes.as_ref().map_or(n, Vec::len) as f64;
            let expected = r.per_hour * nodes * (r.until.0 - r.from.0).as_secs_f64() / 3600.0;
            ops = ops.saturating_add(expected.min(1e9) as usize);
        }
        if ops > MAX_OPS {
            return Err(invalid(
                "traffic",
                format!("about {ops} operations; at most {MAX_OPS}"),
            ));
        }
        self.validate_faults(n, &node)?;
        self.validate_protocols()?;
        Ok(())
    }

    fn validate_radio(&self) -> Result<(), ScenarioError> {
        let r = &self.radio;
        let plan = RegionPlan::builtin(&r.region).map_err(|_| {
            invalid(
                "radio.region",
                format!(
                    "unknown region {:?}; known: {}",
                    r.region,
                    RegionPlan::builtin_names().join(", ")
                ),
            )
        })?;
        let m = r.modulation();
        if let Err(e) = m.validate() {
            let text = e.to_string();
            let field = text
                .split_whitespace()
                .next()
                .unwrap_or("radio")
                .to_string();
            return Err(invalid(format!("radio.{field}"), text));
        }
        if plan.sub_band(m.frequency_hz, m.bandwidth_hz).is_none() {
            return Err(invalid(
                "radio.frequency_hz",
                format!("{} Hz is in no sub-band of {}", m.frequency_hz, r.region),
            ));
        }
        if !(32..=255).contains(&r.mtu) {
            return Err(invalid("radio.mtu", "must be 32..=255 (one LoRa frame)"));
        }
        if !(0.0..=1.0).contains(&r.extra_loss) {
            return Err(invalid("radio.extra_loss", "must be a probability 0..=1"));
        }
        if !(r.capture_db.is_finite() && r.capture_db >= 0.0) {
            return Err(invalid("radio.capture_db", "must be ≥ 0"));
        }
        if !(r.noise_figure_db.is_finite() && r.antenna_gain_db.is_finite()) {
            return Err(invalid("radio.noise_figure_db", "must be finite"));
        }
        Ok(())
    }

    fn validate_faults(
        &self,
        n: usize,
        node: &dyn Fn(String, usize) -> Result<(), ScenarioError>,
    ) -> Result<(), ScenarioError> {
        let f = &self.faults;
        for (i, p) in f.partition.iter().enumerate() {
            if p.until <= p.from {
                return Err(invalid(
                    format!("faults.partition[{i}].until"),
                    "must be after from",
                ));
            }
            let mut seen = vec![false; n];
            for (g, group) in p.groups.iter().enumerate() {
                for &v in group {
                    node(format!("faults.partition[{i}].groups[{g}]"), v)?;
                    if std::mem::replace(&mut seen[v], true) {
                        return Err(invalid(
                            format!("faults.partition[{i}].groups"),
                            format!("node {v} is in two groups"),
                        ));
                    }
                }
            }
            for l in &p.links {
                node(format!("faults.partition[{i}].links"), l[0])?;
                node(format!("faults.partition[{i}].links"), l[1])?;
            }
        }
        for (i, c) in f.crash.iter().enumerate() {
            node(format!("faults.crash[{i}].node"), c.node)?;
            if let Some(r) = c.restart
                && r <= c.at
            {
                return Err(invalid(
                    format!("faults.crash[{i}].restart"),
                    "must be after at",
                ));
            }
        }
        for (i, b) in f.loss_burst.iter().enumerate() {
            if b.until <= b.from {
                return Err(invalid(
                    format!("faults.loss_burst[{i}].until"),
                    "must be after from",
                ));
            }
            if !(0.0..=1.0).contains(&b.loss) {
                return Err(invalid(
                    format!("faults.loss_burst[{i}].loss"),
                    "must be 0..=1",
                ));
            }
            for l in b.links.iter().flatten() {
                node(format!("faults.loss_burst[{i}].links"), l[0])?;
                node(format!("faults.loss_burst[{i}].links"), l[1])?;
            }
        }
        Ok(())
    }

    fn validate_protocols(&self) -> Result<(), ScenarioError> {
        let p = &self.protocols;
        if p.run.is_empty() {
            return Err(invalid("protocols.run", "name at least one protocol"));
        }
        for name in &p.run {
            if !PROTOCOLS.contains(&name.as_str()) {
                return Err(invalid(
                    "protocols.run",
                    format!("unknown protocol {name:?}; known: {}", PROTOCOLS.join(", ")),
                ));
            }
        }
        if !(1..=7).contains(&p.managed_flood.hop_limit) {
            return Err(invalid(
                "protocols.managed_flood.hop_limit",
                "must be 1..=7",
            ));
        }
        if p.announce_repeat.interval.0 < Duration::from_secs(1) {
            return Err(invalid(
                "protocols.announce_repeat.interval",
                "must be ≥ 1s",
            ));
        }
        if p.announce_repeat.max_ops_per_answer == 0 {
            return Err(invalid(
                "protocols.announce_repeat.max_ops_per_answer",
                "must be ≥ 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_key() {
        let base = "name = \"x\"\nduration = \"1h\"\n[topology]\nkind = \"line\"\nn = 3\nspacing_m = 100\n";
        let bad = format!("{base}[radio]\nspreading_factor = 13\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("radio.spreading_factor"), "{error}");
        let bad = format!("{base}[[faults.crash]]\nnode = 7\nat = \"1m\"\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("faults.crash[0].node"), "{error}");
        let bad = format!("{base}[radio]\nfrequency_hz = 915000000\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("radio.frequency_hz"), "{error}");
        let bad = format!("{base}[radio]\nsprading_factor = 9\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("sprading_factor"), "{error}");
        let bad = format!("{base}[attacker]\nnode = 3\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("attacker.node"), "{error}");
        let bad =
            format!("{base}[attacker]\nnode = 1\n[[traffic.publish]]\nnode = 1\nat = \"1m\"\n");
        let error = Scenario::parse(&bad).unwrap_err().to_string();
        assert!(error.contains("traffic.publish[0].node"), "{error}");
        assert!(Scenario::parse(base).is_ok());
    }
}
