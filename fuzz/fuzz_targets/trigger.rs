//! The trigger parser on arbitrary text: it never panics, and whatever it accepts prints as
//! text that parses back to the same tree.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    if let Ok(trigger) = mapping::Trigger::parse(src) {
        let printed = trigger.to_string();
        let again = mapping::Trigger::parse(&printed);
        assert_eq!(again.as_ref(), Ok(&trigger), "{src:?} printed as {printed:?}");
        let event = serde_json::json!({"type": "identify", "traits": {"a": 1, "b": "x"}, "context": {"c": true}});
        let _ = trigger.matches(&event);
    }
});
