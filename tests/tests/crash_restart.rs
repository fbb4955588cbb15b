//! `lorabridge run` processes, as stewards run them: a bridge killed with SIGKILL in the middle
//! of a catch-up loses nothing, and its app, subscribing again after the restart, sees no
//! operation twice.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{App, LIMIT, Subscription, logs, subscribe};
use lorabridge_testkit::rns::Rnsd;
use lorabridge_testkit::station::Station;

const REGION: &str = "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";

/// Writes the config of a bridge with only Reticulum (through `rnsd`) and starts it.
async fn start(dir: PathBuf, rnsd: &str) -> Station {
    let mut station = Station::configure(&dir, "crash-test", REGION, common::APP, rnsd)
        .expect("the station's config is written");
    station.run().await.expect("the bridge serves its status");
    station
}

/// Events seen on `subscription` until `enough` says stop, within `limit`.
async fn gather(
    subscription: &mut Subscription,
    seen: &mut Vec<Vec<u8>>,
    limit: Duration,
    enough: impl Fn(&[Vec<u8>]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !enough(seen) {
        match tokio::time::timeout_at(deadline, subscription.next()).await {
            Ok(event) => seen.push(event.operation_id),
            Err(_) => panic!("only {} operations arrived in {limit:?}", seen.len()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_during_catch_up_loses_nothing_and_repeats_nothing() {
    logs();
    let rnsd = Rnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = start(dir.path().join("a"), &rnsd.address()).await;
    let mut b = start(dir.path().join("b"), &rnsd.address()).await;
    for station in [&a, &b] {
        tokio::time::timeout(LIMIT, async {
            while !station.connected().await {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await
        .expect("connected to rnsd");
    }
    // B is off while A's app publishes.
    b.stop();
    const N: usize = 300;
    let mut app = App::connect(a.grpc).await;
    for i in 0..N {
        app.publish(format!("while B was off {i}").as_bytes())
            .await
            .expect("publishes at A");
    }
    drop(app);
    // A is stopped too, so that B's app subscribes before anything can reach B.
    a.stop();
    b.run().await.expect("the bridge serves its status");
    let mut at_b = subscribe(b.grpc).await;
    a.run().await.expect("the bridge serves its status");
    let started = Instant::now();

    let mut before = Vec::new();
    gather(&mut at_b, &mut before, Duration::from_secs(600), |seen| {
        seen.len() >= N / 5
    })
    .await;
    b.kill();
    drop(at_b);
    let held_at_kill = before.len();

    b.run().await.expect("the bridge serves its status");
    let mut again = subscribe(b.grpc).await;
    tokio::time::timeout(Duration::from_secs(600), async {
        while b.operations().await < N as u64 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("B holds every operation after the restart: nothing was lost");
    let caught_up = started.elapsed();

    // The app sees what arrives after it subscribed again; none of it twice, and none of
    // what it saw before the crash.
    let mut after = Vec::new();
    while let Ok(event) = tokio::time::timeout(Duration::from_secs(2), again.next()).await {
        after.push(event.operation_id);
    }
    let before: HashSet<_> = before.into_iter().collect();
    assert_eq!(before.len(), held_at_kill, "no duplicate before the crash");
    let after_set: HashSet<_> = after.iter().cloned().collect();
    assert_eq!(
        after_set.len(),
        after.len(),
        "no duplicate after the restart"
    );
    assert!(
        after_set.is_disjoint(&before),
        "the app saw again what it had seen before the crash"
    );

    // And the restarted bridge carries new operations both ways.
    let mut at_a = subscribe(a.grpc).await;
    App::connect(b.grpc)
        .await
        .publish(b"after the crash")
        .await
        .expect("publishes at B");
    common::arrival(&mut at_a, b"after the crash").await;
    println!(
        "{{\"test\": \"kill_9_during_catch_up\", \"operations\": {N}, \"seen_before_kill\": {held_at_kill}, \"seen_after_restart\": {}, \"all_held_after_s\": {:.1}}}",
        after.len(),
        caught_up.as_secs_f64()
    );
    a.stop();
    b.stop();
}
