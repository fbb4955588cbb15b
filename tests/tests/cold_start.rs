//! A mesh that has just started: three fresh bridges in a line, on the summary schedule of
//! `lorabridge run`, carry an operation published the moment they are up. Before bridges
//! greeted their links, the first operation waited at the middle bridge for the first
//! summaries (tens of seconds at the default 90 s Trickle interval), because it knew no
//! neighbour to relay to. The test asserts delivery; the times are printed for the notes.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{arrival, chat_topic, logs, subscribe};
use lorabridge_sim::Scenario;
use lorabridge_sim::air::PhysicalHub;
use lorabridge_testkit::neighbourhood::{Member, Neighbourhood};

/// A, B and C stand 100 m apart at SF7 without fading: A and C cannot hear each other, B
/// hears both. They start at once, with empty databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fresh_bridges_in_a_line_carry_the_first_operation_end_to_end() {
    logs();
    let scenario = Scenario::parse(
        "name = \"row\"\nduration = \"1h\"\n[radio]\nspreading_factor = 7\n\
         [path_loss]\nsigma_db = 0.0\n[topology]\nkind = \"line\"\nn = 3\nspacing_m = 100\n",
    )
    .expect("scenario");
    let air = PhysicalHub::new(&scenario, vec![[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]]);
    let members = ["A", "B", "C"].map(|name| Member::new(name, false, true).with_field_trickle());
    let started = Instant::now();
    let n = Neighbourhood::start_on(Arc::new(air), common::NETWORK, &members, &[chat_topic()])
        .await
        .unwrap();
    let up = started.elapsed();
    let _status = common::print_status(
        ["A", "B", "C"]
            .map(|name| (name, n.bridge(name).status_addr.unwrap()))
            .to_vec(),
    );
    let mut at_b = subscribe(n.bridge("B").grpc_addr).await;
    let mut at_c = subscribe(n.bridge("C").grpc_addr).await;

    let published = Instant::now();
    common::publish(n.bridge("A").grpc_addr, b"first words", b"cold-1").await;
    arrival(&mut at_b, b"first words").await;
    let first_at_b = published.elapsed();
    arrival(&mut at_c, b"first words").await;
    let first_at_c = published.elapsed();

    // The mesh is warm now: the next one shows what the first paid for starting.
    let published = Instant::now();
    common::publish(n.bridge("A").grpc_addr, b"second words", b"cold-2").await;
    arrival(&mut at_c, b"second words").await;
    let second_at_c = published.elapsed();
    println!(
        "{{\"test\": \"cold_start_line_3\", \"bridges_up_s\": {:.1}, \"first_at_b_s\": {:.1}, \
         \"first_at_c_s\": {:.1}, \"second_at_c_s\": {:.1}}}",
        up.as_secs_f64(),
        first_at_b.as_secs_f64(),
        first_at_c.as_secs_f64(),
        second_at_c.as_secs_f64()
    );
    n.stop().await;
}
