//! Any bytes heard on air: the frame decoder (plain and with a region key) must not panic,
//! and whatever it accepts must encode back to a frame it accepts again. Each input is also
//! tried with a valid CRC appended, and with our version and network tag in front as well, so
//! the fuzzer gets past the checksum and the header to the message decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lorabridge_proto::{FrameCodec, NetworkTag, RegionKey};

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

fuzz_target!(|data: &[u8]| {
    let sealed = |bytes: &[u8]| [bytes, &CRC16.checksum(bytes).to_be_bytes()].concat();
    let with_crc = sealed(data);
    let ours = |flags: u8| sealed(&[&[0x10 | flags, 0x5a, 0xa5][..], data].concat());
    let (plain_header, sealed_header) = (ours(0), ours(1));
    let network = NetworkTag([0x5a, 0xa5]);
    for codec in [FrameCodec::new(network, None), FrameCodec::new(network, Some(RegionKey::new(&[1; 32])))] {
        for input in [data, &with_crc, &plain_header, &sealed_header] {
            if let Ok(frame) = codec.decode(input) {
                let again = codec.encode(frame.sender, &frame.message, [0; 12], 4096).expect("re-encodes");
                assert_eq!(codec.decode(&again).expect("decodes again"), frame);
            }
        }
    }
});
