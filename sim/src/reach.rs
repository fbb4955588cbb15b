//! Which (operation, node) pairs could arrive at all, whatever the protocol: the yardstick
//! that delivery under faults is judged against.
//!
//! A pair is reachable when a chain of nodes that are powered at the same time, each hearing
//! the next above sensitivity and not cut apart by a partition or a total loss burst, leads
//! from the origin, once it has published, to the node before the run ends. Hops are taken to
//! cost no time and nothing to be lost by chance, so this is an upper bound: no protocol
//! delivers a pair it calls unreachable. A node that comes back from a crash without its
//! store has forgotten what it held, and passes on only what reaches it again.

use std::time::Duration;

use crate::physics::Geometry;
use crate::scenario::Scenario;

/// `reachable[k * n + i]`: whether operation `k`, published at `published[k]` by
/// `origin[k]`, can reach node `i` (origins count as reached).
pub fn reachable(
    s: &Scenario,
    geo: &Geometry,
    published: &[Option<Duration>],
    origin: &[usize],
) -> Vec<bool> {
    let n = geo.n;
    let m = s.radio.modulation();
    let faults = &s.faults;
    // The times at which who is up, or who hears whom, can change.
    let mut changes: Vec<Duration> = faults
        .crash
        .iter()
        .flat_map(|c| [Some(c.at.0), c.restart.map(|r| r.0)])
        .chain(
            faults
                .partition
                .iter()
                .flat_map(|p| [Some(p.from.0), Some(p.until.0)]),
        )
        .chain(
            faults
                .loss_burst
                .iter()
                .filter(|b| b.loss >= 1.0)
                .flat_map(|b| [Some(b.from.0), Some(b.until.0)]),
        )
        .flatten()
        .filter(|t| *t < s.duration.0)
        .collect();
    changes.sort();
    changes.dedup();

    // The attacker relays nothing.
    let up = |i: usize, t: Duration| {
        s.honest(i) && !faults.crash.iter().any(|c| c.node == i && c.holds_down(t))
    };
    let link = |a: usize, b: usize, t: Duration| {
        geo.hears(a, b, &m)
            && !faults.partition.iter().any(|p| p.separates(t, a, b))
            && !faults
                .loss_burst
                .iter()
                .any(|l| l.loss >= 1.0 && l.applies(t, a, b))
    };
    let forgets = |i: usize, t: Duration| {
        faults
            .crash
            .iter()
            .any(|c| c.node == i && !c.keep_state && c.at.0 == t)
    };

    let mut out = vec![false; published.len() * n];
    for (k, (at, &from)) in published.iter().zip(origin).enumerate() {
        let Some(at) = *at else { continue };
        let mut holds = vec![false; n];
        holds[from] = true;
        let reached = &mut out[k * n..(k + 1) * n];
        reached[from] = true;
        let epochs = std::iter::once(at).chain(changes.iter().copied().filter(|t| *t > at));
        for t in epochs {
            for (i, held) in holds.iter_mut().enumerate() {
                if forgets(i, t) {
                    *held = false;
                }
            }
            // Within one epoch nothing changes, so the spread is a plain search.
            let mut frontier: Vec<usize> = (0..n).filter(|&i| holds[i] && up(i, t)).collect();
            while let Some(a) = frontier.pop() {
                for b in 0..n {
                    if !holds[b] && up(b, t) && link(a, b, t) {
                        holds[b] = true;
                        reached[b] = true;
                        frontier.push(b);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(faults: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\ndescription = \"\"\nseed = 1\nduration = \"1h\"\n\
             [radio]\nextra_loss = 0.0\n[path_loss]\nsigma_db = 0.0\n\
             [topology]\nkind = \"line\"\nn = 3\nspacing_m = 180.0\n\
             [traffic]\n{faults}"
        );
        Scenario::parse(&text).expect("a valid scenario")
    }

    fn reach(s: &Scenario, at: u64, from: usize) -> Vec<bool> {
        let geo = Geometry::build(s);
        reachable(s, &geo, &[Some(Duration::from_secs(at))], &[from])
    }

    #[test]
    fn a_connected_line_reaches_everyone() {
        assert_eq!(reach(&scenario(""), 60, 0), [true, true, true]);
    }

    #[test]
    fn a_node_down_for_good_is_out_of_reach_and_cuts_the_line() {
        let s = scenario("[[faults.crash]]\nnode = 1\nat = \"1m\"\n");
        assert_eq!(reach(&s, 120, 0), [true, false, false]);
        // Published before the crash, it has crossed already.
        assert_eq!(reach(&s, 30, 0), [true, true, true]);
    }

    #[test]
    fn a_partition_that_heals_delays_but_does_not_prevent() {
        let s = scenario(
            "[[faults.partition]]\nfrom = \"1m\"\nuntil = \"30m\"\ngroups = [[0], [1, 2]]\n",
        );
        assert_eq!(reach(&s, 120, 0), [true, true, true]);
    }

    #[test]
    fn a_partition_until_the_end_prevents() {
        let s = scenario(
            "[[faults.partition]]\nfrom = \"1m\"\nuntil = \"2h\"\ngroups = [[0], [1, 2]]\n",
        );
        assert_eq!(reach(&s, 120, 0), [true, false, false]);
    }

    #[test]
    fn a_relay_that_forgets_before_the_far_end_wakes_cannot_pass_it_on() {
        // Node 2 is down while 0 and 1 hold the op; then the origin dies for good and the
        // relay comes back from a crash with a blank store: nobody is left to tell 2.
        let s = scenario(
            "[[faults.crash]]\nnode = 2\nat = \"1m\"\nrestart = \"20m\"\n\
             [[faults.crash]]\nnode = 0\nat = \"5m\"\n\
             [[faults.crash]]\nnode = 1\nat = \"10m\"\nrestart = \"15m\"\nkeep_state = false\n",
        );
        assert_eq!(reach(&s, 120, 0), [true, true, false]);
        // Had the relay kept its store, it would tell 2 once 2 is back.
        let kept = scenario(
            "[[faults.crash]]\nnode = 2\nat = \"1m\"\nrestart = \"20m\"\n\
             [[faults.crash]]\nnode = 0\nat = \"5m\"\n\
             [[faults.crash]]\nnode = 1\nat = \"10m\"\nrestart = \"15m\"\n",
        );
        assert_eq!(reach(&kept, 120, 0), [true, true, true]);
    }

    #[test]
    fn a_total_loss_burst_cuts_like_a_partition_and_a_partial_one_does_not() {
        let total = scenario("[[faults.loss_burst]]\nfrom = \"1m\"\nuntil = \"2h\"\n");
        assert_eq!(reach(&total, 120, 0), [true, false, false]);
        let partial =
            scenario("[[faults.loss_burst]]\nfrom = \"1m\"\nuntil = \"2h\"\nloss = 0.9\n");
        assert_eq!(reach(&partial, 120, 0), [true, true, true]);
    }
}
