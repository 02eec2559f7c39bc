use serde_json::json;

use super::*;

fn scalar_int() -> Shape {
    Shape::Scalar(Types::INTEGER)
}
fn int_array() -> Shape {
    Shape::Array(Types::INTEGER)
}
fn object() -> Shape {
    Shape::Object { properties: vec![("role".into(), Types::STRING), ("age".into(), Types::INTEGER)], additional: None }
}

/// (style, explode, shape, raw, expected); the examples of the OpenAPI 3.1 "Style Examples" table.
#[test]
fn every_style_and_explode_reads_its_examples() {
    let obj = json!({"role": "admin", "age": 7});
    let cases: Vec<(Style, bool, Shape, &str, Value)> = vec![
        (Style::Simple, false, scalar_int(), "5", json!(5)),
        (Style::Simple, true, scalar_int(), "5", json!(5)),
        (Style::Simple, false, int_array(), "3,4,5", json!([3, 4, 5])),
        (Style::Simple, true, int_array(), "3,4,5", json!([3, 4, 5])),
        (Style::Simple, false, object(), "role,admin,age,7", obj.clone()),
        (Style::Simple, true, object(), "role=admin,age=7", obj.clone()),
        (Style::Label, false, scalar_int(), ".5", json!(5)),
        (Style::Label, true, scalar_int(), ".5", json!(5)),
        (Style::Label, false, int_array(), ".3,4,5", json!([3, 4, 5])),
        (Style::Label, true, int_array(), ".3.4.5", json!([3, 4, 5])),
        (Style::Label, false, object(), ".role,admin,age,7", obj.clone()),
        (Style::Label, true, object(), ".role=admin.age=7", obj.clone()),
        (Style::Matrix, false, scalar_int(), ";id=5", json!(5)),
        (Style::Matrix, true, scalar_int(), ";id=5", json!(5)),
        (Style::Matrix, false, int_array(), ";id=3,4,5", json!([3, 4, 5])),
        (Style::Matrix, true, int_array(), ";id=3;id=4;id=5", json!([3, 4, 5])),
        (Style::Matrix, false, object(), ";id=role,admin,age,7", obj.clone()),
        (Style::Matrix, true, object(), ";role=admin;age=7", obj.clone()),
        // Query/cookie single values; exploded arrays and objects are spread over pairs (see request tests).
        (Style::Form, false, scalar_int(), "5", json!(5)),
        (Style::Form, true, scalar_int(), "5", json!(5)),
        (Style::Form, false, int_array(), "3,4,5", json!([3, 4, 5])),
        (Style::Form, false, object(), "role,admin,age,7", obj.clone()),
        (Style::SpaceDelimited, false, int_array(), "3 4 5", json!([3, 4, 5])),
        (Style::PipeDelimited, false, int_array(), "3|4|5", json!([3, 4, 5])),
        (Style::Simple, false, int_array(), "", json!([])),
    ];
    for (style, explode, shape, raw, expected) in cases {
        assert_eq!(
            parse_styled(style, explode, "id", raw, &shape),
            Some(expected),
            "{style:?} explode={explode} {raw:?}"
        );
    }
}

#[test]
fn styles_refuse_what_does_not_read() {
    let cases: Vec<(Style, bool, Shape, &str)> = vec![
        (Style::Label, false, scalar_int(), "5"),
        (Style::Matrix, false, scalar_int(), "id=5"),
        (Style::Matrix, false, scalar_int(), ";other=5"),
        (Style::Matrix, true, int_array(), ";id=3;x=4"),
        (Style::Simple, false, object(), "role,admin,age"),
        (Style::Simple, true, object(), "role=admin,age"),
        (Style::Simple, true, object(), "role=a,role=b"),
        (Style::Simple, false, int_array(), "3,x,5"),
        (Style::Simple, false, scalar_int(), "3,4"),
        (Style::Simple, true, object(), "role=admin,age=old"),
        (Style::DeepObject, true, object(), "role=admin"),
    ];
    for (style, explode, shape, raw) in cases {
        assert_eq!(parse_styled(style, explode, "id", raw, &shape), None, "{style:?} explode={explode} {raw:?}");
    }
}

#[test]
fn integers_are_read_in_json_grammar_only() {
    for ok in ["0", "5", "-5", "9223372036854775807", "18446744073709551615", "-9223372036854775808"] {
        assert!(coerce(ok, Types::INTEGER).is_some(), "{ok}");
    }
    for bad in ["", "+5", "05", "-", "5 ", " 5", "0x10", "1e3", "5.0", "18446744073709551616", "١٢", "5;", "NaN"] {
        assert_eq!(coerce(bad, Types::INTEGER), None, "{bad:?}");
    }
}

#[test]
fn numbers_are_read_in_json_grammar_only() {
    for ok in ["0", "1.5", "-2e3", "1E-2"] {
        assert!(coerce(ok, Types::NUMBER).is_some(), "{ok}");
    }
    for bad in ["", "NaN", "inf", "Infinity", ".5", "5.", " 1", "1 ", "+1", "1e999", "0x1", "1_000"] {
        assert_eq!(coerce(bad, Types::NUMBER), None, "{bad:?}");
    }
}

#[test]
fn coercion_follows_the_declared_types_in_order() {
    assert_eq!(coerce("true", Types::BOOLEAN), Some(json!(true)));
    assert_eq!(coerce("True", Types::BOOLEAN), None);
    assert_eq!(coerce("1", Types::BOOLEAN), None);
    assert_eq!(coerce("5", Types::STRING), Some(json!("5")));
    assert_eq!(coerce("5", Types::INTEGER.or(Types::STRING)), Some(json!(5)));
    assert_eq!(coerce("x", Types::INTEGER.or(Types::STRING)), Some(json!("x")));
    assert_eq!(coerce("", Types::INTEGER.or(Types::NULL)), Some(Value::Null));
    assert_eq!(coerce("anything", Types::ANY), Some(json!("anything")));
    assert_eq!(coerce("x", Types::OBJECT), None);
}
