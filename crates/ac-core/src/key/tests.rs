use super::*;
use proptest::prelude::*;

fn err(template: &str, arity: usize) -> String {
    let parsed = KeyTemplate::parse(template).and_then(|t| t.check_arity(arity));
    parsed.unwrap_err().to_string()
}

#[test]
fn positional_and_indexed_placeholders_render() {
    let t = KeyTemplate::parse("user:{}").unwrap();
    assert_eq!(t.render(&42u64), "user:42");
    let t = KeyTemplate::parse("order:{1}:{0}:{1}").unwrap();
    assert_eq!(t.render(&(7u64, "x")), "order:x:7:x");
    let t = KeyTemplate::parse("{}-{}").unwrap();
    assert_eq!(t.render(&(1, 2)), "1-2");
}

#[test]
fn doubled_braces_are_literal() {
    let t = KeyTemplate::parse("{{lit}}:{}").unwrap();
    assert_eq!(t.render(&5u8), "{lit}:5");
    assert_eq!(KeyTemplate::parse("{{}}").unwrap().as_static(), Some("{}"));
}

#[test]
fn malformed_templates_are_refused_naming_the_template() {
    for (template, needle) in [
        ("user:{", "unclosed"),
        ("user:}", "unmatched"),
        ("user:{user_id}", "{user_id} is not supported"),
        ("user:{0:>5}", "not supported"),
        ("a:{}:{0}", "cannot mix"),
    ] {
        let msg = err(template, 3);
        assert!(msg.contains(&format!("{template:?}")), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn placeholder_beyond_arguments_is_refused() {
    let msg = err("order:{0}:{2}", 2);
    assert!(msg.contains("\"order:{0}:{2}\""), "{msg}");
    assert!(
        msg.contains("{2} is beyond the function's 2 arguments"),
        "{msg}"
    );
    assert!(err("user:{}", 0).contains("beyond the function's 0 arguments"));
    assert!(template_spec::<()>("static").is_ok());
    assert!(template_spec::<()>("x:{}").is_err());
}

#[test]
fn a_template_that_leaves_an_argument_out_is_refused() {
    // Each of these would make calls that differ in one argument share
    // an entry: (1, "eu") and (1, "us") returning each other's value.
    for (template, arity, needle) in [
        (
            "profile:{}",
            2,
            "does not use argument {1} of the function's 2 arguments",
        ),
        ("profile:{1}", 2, "does not use argument {0}"),
        ("o:{0}:{0}:{2}", 3, "does not use argument {1}"),
        (
            "flags",
            1,
            "is a static key, but the function takes 1 argument:",
        ),
        (
            "flags",
            2,
            "is a static key, but the function takes 2 arguments",
        ),
    ] {
        let msg = err(template, arity);
        assert!(msg.contains(&format!("{template:?}")), "{msg}");
        assert!(msg.contains(needle), "{msg}");
        assert!(
            msg.contains("key closure"),
            "says how to share on purpose: {msg}"
        );
    }
    assert!(template_spec::<(u64, String)>("profile:{}:{}").is_ok());
    assert!(template_spec::<(u64, String)>("profile:{1}/{0}").is_ok());
    assert!(template_spec::<()>("flags").is_ok());
    assert!(template_spec::<u64>("flags").is_err());
}

#[test]
fn huge_indexes_are_refused_not_wrapped() {
    for template in [
        "{18446744073709551615}",
        "{99999999999999999999999}",
        "{64}",
    ] {
        let msg = KeyTemplate::parse(template).unwrap_err().to_string();
        assert!(msg.contains("beyond any function's arguments"), "{msg}");
    }
}

#[test]
fn key_spec_renders_without_reentrancy_problems() {
    let spec = template_spec::<(u64, u64)>("o:{0}:{1}").unwrap();
    // Nested use of the thread-local buffer falls back to a fresh String.
    let outer = spec.with_key(&(1, 2), |k1| {
        let inner = spec.with_key(&(3, 4), str::to_owned);
        format!("{k1}|{inner}")
    });
    assert_eq!(outer, "o:1:2|o:3:4");
}

proptest! {
    /// Any text with braces doubled is a static template equal to the text.
    #[test]
    fn escaped_text_round_trips(text in "\\PC{0,40}") {
        let escaped = text.replace('{', "{{").replace('}', "}}");
        let t = KeyTemplate::parse(&escaped).unwrap();
        prop_assert_eq!(t.as_static(), Some(text.as_str()));
    }

    /// Literals and indexed placeholders render to the concatenation
    /// of literals and the indexed arguments.
    #[test]
    fn indexed_templates_render_their_arguments(
        pieces in prop::collection::vec(("[a-z:_-]{0,6}", 0usize..3), 0..6),
        args in (any::<u64>(), any::<i32>(), "[a-z]{0,8}"),
    ) {
        let mut template = String::new();
        let mut expected = String::new();
        for (lit, idx) in &pieces {
            template.push_str(lit);
            template.push_str(&format!("{{{idx}}}"));
            expected.push_str(lit);
            match idx {
                0 => expected.push_str(&args.0.to_string()),
                1 => expected.push_str(&args.1.to_string()),
                _ => expected.push_str(&args.2),
            }
        }
        // Every argument must be placed: end with all three.
        template.push_str("|{0}|{1}|{2}");
        expected.push_str(&format!("|{}|{}|{}", args.0, args.1, args.2));
        let spec = template_spec::<(u64, i32, String)>(&template).unwrap();
        prop_assert_eq!(spec.key(&args), expected);
    }

    /// Parsing arbitrary input never panics; a parsed template is
    /// accepted for an arity exactly when it places every argument and
    /// nothing beyond them.
    #[test]
    fn parse_never_panics(text in "\\PC{0,40}", arity in 0usize..4) {
        if let Ok(t) = KeyTemplate::parse(&text) {
            let all_placed = (0..arity).all(|i| t.parts.contains(&Part::Arg(i)));
            prop_assert_eq!(
                t.check_arity(arity).is_ok(),
                t.required_args() <= arity && all_placed
            );
        }
    }

    /// Two calls whose arguments differ get different keys, for every
    /// template that `check_arity` accepts (a pair of u8 arguments,
    /// rendered as digits next to literals without digits).
    #[test]
    fn accepted_templates_never_share_a_key(
        lits in prop::collection::vec("[a-z:]{0,3}", 3),
        order in prop::sample::select(vec![[0usize, 1], [1, 0]]),
        a in (0u8..10, 0u8..10),
        b in (0u8..10, 0u8..10),
    ) {
        let template = format!("{}{{{}}}{}{{{}}}{}", lits[0], order[0], lits[1], order[1], lits[2]);
        let spec = template_spec::<(u8, u8)>(&template).unwrap();
        prop_assert_eq!(spec.key(&a) == spec.key(&b), a == b);
    }
}
