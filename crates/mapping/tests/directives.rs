//! Each mapping directive, with the quirks users' Segment mappings rely on.
//! References: engage-events.md §2.2 unless said otherwise.

use mapping::{Mapping, MappingError, transform};
use serde_json::{Value, json};

fn apply(mapping: Value, event: Value) -> Value {
    transform(&mapping, &event).unwrap_or_else(|e| panic!("{e}"))
}

fn invalid(mapping: Value) -> MappingError {
    match Mapping::compile(&mapping) {
        Err(e) => e,
        Ok(m) => panic!("mapping unexpectedly valid: {m:?}"),
    }
}

fn identify() -> Value {
    json!({
        "type": "identify",
        "userId": "u-1",
        "traits": {"email": "Ana@Example.com", "plan": "pro", "age": 0, "vip": false, "nothing": null,
                   "tags": ["a", "b"], "first_time_shopper": true},
        "context": {"personas": {"computation_key": "first_time_shopper", "external_audience_id": "4269566"}}
    })
}

// §2.2 general rules: raw values pass through; keys resolving to nothing are removed; null kept.
#[test]
fn raw_values_pass_through_missing_keys_are_removed_and_null_is_kept() {
    let out = apply(
        json!({"a": 1, "b": {"c": [true, "x"]}, "gone": {"@path": "$.nope"}, "nul": {"@path": "$.traits.nothing"}}),
        identify(),
    );
    assert_eq!(out, json!({"a": 1, "b": {"c": [true, "x"]}, "nul": null}));
}

#[test]
fn undefined_inside_an_array_becomes_null() {
    assert_eq!(
        apply(json!({"l": [{"@path": "$.nope"}, 1]}), identify()),
        json!({"l": [null, 1]})
    );
}

#[test]
fn path_reads_dot_bracket_and_dollar_paths() {
    let out = apply(
        json!({"a": {"@path": "$.traits.email"}, "b": {"@path": "traits.tags[1]"}, "c": {"@path": "traits[plan]"}}),
        identify(),
    );
    assert_eq!(out, json!({"a": "Ana@Example.com", "b": "b", "c": "pro"}));
}

#[test]
fn path_argument_may_be_computed_by_a_directive() {
    let out = apply(
        json!({"x": {"@path": {"@template": "traits.{{type}}"}}}),
        json!({"type": "plan", "traits": {"plan": 3}}),
    );
    assert_eq!(out, json!({"x": 3}));
}

#[test]
fn path_with_a_non_string_computed_argument_fails_on_the_event() {
    let m = Mapping::compile(&json!({"x": {"@path": {"@path": "$.n"}}})).unwrap();
    let e = m.apply(&json!({"n": 5})).unwrap_err();
    assert_eq!(e.path, "mapping.x.@path");
    assert!(e.message.contains("expected string, got number"), "{e}");
}

// §2.2 @if: exists is "not undefined and not null".
#[test]
fn if_exists_treats_null_as_absent() {
    let m = json!({"e": {"@if": {"exists": {"@path": "$.traits.nothing"}, "then": "yes", "else": "no"}}});
    assert_eq!(apply(m.clone(), identify()), json!({"e": "no"}));
    let m =
        json!({"e": {"@if": {"exists": {"@path": "$.traits.age"}, "then": "yes", "else": "no"}}});
    assert_eq!(apply(m, identify()), json!({"e": "yes"}));
}

// §2.2 @if: blank counts 0, false and "" as blank.
#[test]
fn if_blank_counts_zero_false_and_empty_string_as_blank() {
    for (path, expected) in [
        ("$.traits.age", "blank"),
        ("$.traits.vip", "blank"),
        ("$.traits.empty", "blank"),
        ("$.traits.nothing", "blank"),
        ("$.traits.plan", "filled"),
        ("$.traits.tags", "filled"),
    ] {
        let mut ev = identify();
        ev["traits"]["empty"] = json!("");
        let m =
            json!({"v": {"@if": {"blank": {"@path": path}, "then": "filled", "else": "blank"}}});
        assert_eq!(apply(m, ev), json!({"v": expected}), "{path}");
    }
}

// §2.2 @if: `else` is used only if truthy.
#[test]
fn if_else_is_used_only_when_truthy() {
    for falsy in [json!(false), json!(0), json!(""), json!(null)] {
        let m = json!({"v": {"@if": {"exists": {"@path": "$.nope"}, "then": 1, "else": falsy}}});
        assert_eq!(apply(m, identify()), json!({}), "else {falsy}");
    }
    let m = json!({"v": {"@if": {"exists": {"@path": "$.userId"}, "then": null, "else": 2}}});
    assert_eq!(
        apply(m, identify()),
        json!({"v": null}),
        "then is used whenever it is defined"
    );
}

#[test]
fn if_without_exists_or_blank_is_invalid() {
    let e = invalid(json!({"dataFields": {"x": {"@if": {"then": 1}}}}));
    assert_eq!(e.errors[0].path, "mapping.dataFields.x");
    assert!(e.errors[0].message.contains("exists"));
}

#[test]
fn template_fills_placeholders_and_missing_values_become_empty() {
    let m = json!({"t": {"@template": "{{userId}}:{{traits.plan}}:{{traits.nope}}:{{{traits.email}}}"}});
    assert_eq!(
        apply(m, identify()),
        json!({"t": "u-1:pro::Ana@Example.com"})
    );
}

#[test]
fn template_with_a_non_string_is_invalid_at_its_path() {
    let e = invalid(json!({"dataFields": {"greeting": {"@template": 5}}}));
    assert_eq!(
        e.to_string(),
        "invalid mapping: mapping.dataFields.greeting: @template expects a string"
    );
}

#[test]
fn literal_returns_its_value() {
    let m = json!({"a": {"@literal": ""}, "b": {"@literal": {"k": [1]}}});
    assert_eq!(apply(m, identify()), json!({"a": "", "b": {"k": [1]}}));
}

#[test]
fn array_path_maps_each_item_relative_to_itself_and_wraps_a_single_object() {
    let ev = json!({"properties": {"products": [{"sku": "a", "price": 1}, {"sku": "b"}], "one": {"sku": "c"}}});
    let m = json!({
        "many": {"@arrayPath": ["$.properties.products", {"id": {"@path": "$.sku"}, "p": {"@path": "price"}}]},
        "single": {"@arrayPath": ["$.properties.one", {"id": {"@path": "sku"}}]},
        "raw": {"@arrayPath": ["$.properties.products"]},
        "missing": {"@arrayPath": ["$.properties.nope", {"id": {"@path": "sku"}}]}
    });
    assert_eq!(
        apply(m, ev),
        json!({
            "many": [{"id": "a", "p": 1}, {"id": "b"}],
            "single": [{"id": "c"}],
            "raw": [{"sku": "a", "price": 1}, {"sku": "b"}]
        })
    );
}

#[test]
fn array_path_needs_an_array() {
    let e = invalid(json!({"x": {"@arrayPath": "$.a"}}));
    assert_eq!(e.errors[0].message, "@arrayPath expects an array");
}

#[test]
fn case_lowers_and_uppers_strings_and_passes_others_through() {
    let m = json!({
        "lo": {"@case": {"operator": "lower", "value": {"@path": "$.traits.email"}}},
        "up": {"@case": {"operator": "upper", "value": "abc"}},
        "num": {"@case": {"operator": "upper", "value": {"@path": "$.traits.age"}}},
        "empty": {"@case": {"operator": "upper", "value": ""}}
    });
    assert_eq!(
        apply(m, identify()),
        json!({"lo": "ana@example.com", "up": "ABC", "num": 0})
    );
}

#[test]
fn case_with_an_unknown_operator_is_invalid() {
    let e = invalid(json!({"x": {"@case": {"operator": "title", "value": "a"}}}));
    assert!(e.errors[0].message.contains("\"lower\" or \"upper\""));
}

#[test]
fn replace_is_literal_global_by_default_and_can_ignore_case() {
    let ev = json!({"s": "a.b.A.b", "n": 1200, "t": true});
    let m = json!({
        "all": {"@replace": {"value": {"@path": "$.s"}, "pattern": ".", "replacement": "-"}},
        "first": {"@replace": {"value": {"@path": "$.s"}, "pattern": ".", "replacement": "-", "global": false}},
        "icase": {"@replace": {"value": {"@path": "$.s"}, "pattern": "a", "replacement": "x", "ignorecase": true}},
        "two": {"@replace": {"value": {"@path": "$.s"}, "pattern": "a", "pattern2": "b", "replacement2": "B"}},
        "num": {"@replace": {"value": {"@path": "$.n"}, "pattern": "00", "replacement": "k"}},
        "bool": {"@replace": {"value": {"@path": "$.t"}, "pattern": "true", "replacement": "yes"}},
        "missing": {"@replace": {"value": {"@path": "$.nope"}, "pattern": "a"}}
    });
    assert_eq!(
        apply(m, ev),
        json!({"all": "a-b-A-b", "first": "a-b.A.b", "icase": "x.b.x.b", "two": ".B.A.B",
               "num": "12k", "bool": "yes", "missing": ""})
    );
}

#[test]
fn replace_patterns_and_replacements_are_limited_to_ten_characters() {
    let ok = json!({"x": {"@replace": {"value": "v", "pattern": "0123456789", "replacement": "0123456789"}}});
    assert!(
        Mapping::compile(&ok).is_ok(),
        "exactly 10 characters is allowed"
    );
    let e = invalid(json!({"x": {"@replace": {"value": "v", "pattern": "01234567890"}}}));
    assert_eq!(
        e.to_string(),
        "invalid mapping: mapping.x: @replace \"pattern\" must be at most 10 characters"
    );
    let e = invalid(
        json!({"x": {"@replace": {"value": "v", "pattern": "a", "replacement2": "x", "pattern2": "b", "global": "yes"}}}),
    );
    assert!(
        e.errors
            .iter()
            .any(|e| e.message.contains("\"global\" must be a boolean"))
    );
}

#[test]
fn merge_overrides_in_the_chosen_direction() {
    let ev = json!({"traits": {"a": 1, "b": 2}, "properties": {"b": 3, "c": 4}});
    let right = json!({"m": {"@merge": {"objects": [{"@path": "$.traits"}, {"@path": "$.properties"}], "direction": "right"}}});
    let left = json!({"m": {"@merge": {"objects": [{"@path": "$.traits"}, {"@path": "$.properties"}], "direction": "left"}}});
    assert_eq!(
        apply(right, ev.clone()),
        json!({"m": {"a": 1, "b": 3, "c": 4}})
    );
    assert_eq!(apply(left, ev), json!({"m": {"b": 2, "c": 4, "a": 1}}));
}

#[test]
fn merge_entry_resolving_to_nothing_removes_the_key() {
    // Object.assign copies `undefined`, which the final clean-up then removes.
    let m = json!({"m": {"@merge": {"objects": [{"@path": "$.traits"}, {"plan": {"@path": "$.nope"}}], "direction": "right"}}});
    let out = apply(m, json!({"traits": {"plan": "pro", "x": 1}}));
    assert_eq!(out, json!({"m": {"x": 1}}));
}

#[test]
fn transform_applies_a_mapping_to_the_result_of_another() {
    let m = json!({"x": {"@transform": {"apply": {"name": {"@path": "$.traits.first"}}, "mapping": {"greet": {"@template": "hi {{name}}"}}}}});
    assert_eq!(
        apply(m, json!({"traits": {"first": "Ana"}})),
        json!({"x": {"greet": "hi Ana"}})
    );
}

#[test]
fn flatten_joins_keys_and_can_keep_arrays_whole() {
    let ev = json!({"p": {"a": {"b": 1, "c": [1, {"d": 2}]}, "e": null}});
    let with = json!({"f": {"@flatten": {"value": {"@path": "$.p"}, "separator": "__"}}});
    let without = json!({"f": {"@flatten": {"value": {"@path": "$.p"}, "separator": ".", "omitArrays": true}}});
    assert_eq!(
        apply(with, ev.clone()),
        json!({"f": {"a__b": 1, "a__c__0": 1, "a__c__1__d": 2, "e": null}})
    );
    assert_eq!(
        apply(without, ev),
        json!({"f": {"a.b": 1, "a.c": [1, {"d": 2}], "e": null}})
    );
}

#[test]
fn flatten_needs_a_separator() {
    let e = invalid(json!({"f": {"@flatten": {"value": 1}}}));
    assert!(e.errors[0].message.contains("separator"));
}

#[test]
fn json_encodes_and_decodes_and_invalid_decode_returns_the_input() {
    let ev = json!({"o": {"a": [1, 2.0]}, "s": "{\"k\":true}", "bad": "{nope"});
    let m = json!({
        "enc": {"@json": {"mode": "encode", "value": {"@path": "$.o"}}},
        "dec": {"@json": {"mode": "decode", "value": {"@path": "$.s"}}},
        "bad": {"@json": {"mode": "decode", "value": {"@path": "$.bad"}}},
        "obj": {"@json": {"mode": "decode", "value": {"@path": "$.o"}}}
    });
    assert_eq!(
        apply(m, ev),
        json!({"enc": "{\"a\":[1,2]}", "dec": {"k": true}, "bad": "{nope", "obj": {"a": [1, 2.0]}})
    );
}

#[test]
fn exclude_when_null_drops_the_field_and_nulls_inside_objects() {
    let ev = json!({"traits": {"nothing": null, "o": {"a": null, "b": 1}}});
    let m = json!({
        "gone": {"@excludeWhenNull": {"@path": "$.traits.nothing"}},
        "obj": {"@excludeWhenNull": {"@path": "$.traits.o"}},
        "kept": {"@path": "$.traits.nothing"}
    });
    assert_eq!(apply(m, ev), json!({"obj": {"b": 1}, "kept": null}));
}

#[test]
fn liquid_renders_against_the_event() {
    let m = json!({"l": {"@liquid": "{% if traits.vip %}VIP{% else %}{{ traits.email | downcase }}{% endif %}"}});
    assert_eq!(apply(m, identify()), json!({"l": "ana@example.com"}));
}

#[test]
fn liquid_refuses_disabled_tags_and_filters_and_long_templates() {
    let e = invalid(json!({"l": {"@liquid": "{% for t in traits.tags %}{{t}}{% endfor %}"}}));
    assert_eq!(
        e.to_string(),
        "invalid mapping: mapping.l: @liquid: tag \"for\" is disabled"
    );
    let e = invalid(json!({"l": {"@liquid": "{{ traits.tags | sort }}"}}));
    assert!(e.errors[0].message.contains("filter \"sort\" is disabled"));
    let e = invalid(json!({"l": {"@liquid": "x".repeat(1001)}}));
    assert!(e.errors[0].message.contains("1000 characters"));
    assert!(Mapping::compile(&json!({"l": {"@liquid": "x".repeat(1000)}})).is_ok());
}

// engage-events.md §1.4: the root directive receives all other keys as its `mapping`.
#[test]
fn root_directive_transforms_the_event_before_the_other_keys_read_it() {
    let ev = json!({
        "type": "track",
        "properties": {"audience_key": "carts", "data_graph_entity_context": {"cart": {"id": "123", "items": [1]}}}
    });
    let m = json!({
        "__segment_internal_directive": mapping::linked_audience_root_directive("properties"),
        "id": {"@path": "$.properties.cart__id"},
        "items": {"@path": "$.properties.cart__items"},
        "ctx": {"@path": "$.properties.data_graph_entity_context"},
        "key": {"@path": "$.properties.audience_key"}
    });
    assert_eq!(
        apply(m, ev),
        json!({"id": "123", "items": [1], "key": "carts"})
    );
}

#[test]
fn unknown_directives_and_mixed_keys_are_invalid_with_their_paths() {
    let e = invalid(json!({
        "email": {"@pathh": "$.traits.email"},
        "dataFields": {"plan": {"@path": "$.traits.plan", "extra": 1}, "ok": {"@path": 3}},
        "list": [1, {"@merge": {"objects": [], "direction": "up"}}]
    }));
    let msgs: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        vec![
            "mapping.email: unknown directive @pathh",
            "mapping.dataFields.plan: a directive cannot be mixed with other keys in the same object",
            "mapping.dataFields.ok: @path expects a string",
            "mapping.list[1]: @merge requires a \"direction\" of \"left\" or \"right\"",
        ]
    );
}

#[test]
fn a_mapping_must_be_an_object() {
    assert_eq!(
        invalid(json!([1])).errors[0].message,
        "a mapping must be an object"
    );
}

#[test]
fn liquid_missing_variables_render_empty() {
    let m = json!({"l": {"@liquid": "[{{ traits.missing }}][{{ nope.deeper | upcase }}]{% if traits.missing %}x{% endif %}"}});
    assert_eq!(apply(m, identify()), json!({"l": "[][]"}));
}

// Found by fuzzing: the Liquid engine panics on integers beyond i64; they are refused instead.
#[test]
fn liquid_integer_literals_beyond_i64_are_invalid_not_a_panic() {
    let e = invalid(json!({"l": {"@liquid": "{{-222222222222222222222222222222222}}"}}));
    assert!(e.errors[0].message.contains("too large"), "{e}");
    assert!(Mapping::compile(&json!({"l": {"@liquid": "order 222222222222222222222222 {{ 9223372036854775807 }}{{ 1.5555555555555555555555 }}"}})).is_ok());
}
