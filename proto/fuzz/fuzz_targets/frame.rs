//! Any bytes heard on air: the frame decoder (plain and with a region key) must not panic,
//! and whatever it accepts must encode back to a frame it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorabridge_proto::{FrameCodec, NetworkTag, RegionKey};

fuzz_target!(|data: &[u8]| {
    let network = NetworkTag([0x5a, 0xa5]);
    for codec in [FrameCodec::new(network, None), FrameCodec::new(network, Some(RegionKey::new(&[1; 32])))] {
        if let Ok(frame) = codec.decode(data) {
            let again = codec.encode(frame.sender, &frame.message, [0; 12], 4096).expect("re-encodes");
            assert_eq!(codec.decode(&again).expect("decodes again"), frame);
        }
    }
});
