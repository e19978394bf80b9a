//! Mapping validation and evaluation on arbitrary input: the bytes hold a mapping and an
//! event as JSON, separated by a NUL byte. Neither step may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (mapping_bytes, event_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(mapping) = serde_json::from_slice::<Value>(mapping_bytes) else { return };
    let event = serde_json::from_slice::<Value>(event_bytes).unwrap_or(Value::Null);
    if let Ok(compiled) = mapping::Mapping::compile(&mapping) {
        let _ = compiled.apply(&event);
    }
    if let Value::Object(fields) = mapping {
        let spec = mapping::MappingSpec { fields, ..mapping::MappingSpec::default() };
        let _ = mapping::test_mapping(&event, &spec);
    }
});
