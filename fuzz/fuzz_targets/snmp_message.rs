//! SNMP messages as a collector receives them from the network: arbitrary bytes decode or
//! are refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = async_snmp::message::Message::decode(bytes.clone(), async_snmp::DecodeConfig::default());
    let _ = async_snmp::message::Message::decode(bytes, async_snmp::DecodeConfig::STRICT);
});
