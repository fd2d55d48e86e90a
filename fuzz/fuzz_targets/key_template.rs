//! `KeyTemplate::parse`, `check_arity`, `required_args` and `render` on
//! arbitrary templates and string arguments, against a reference parser
//! written here from the documented rules: `{}` in order, `{0}`.. by index
//! (below 64), `{{`/`}}` literal braces, anything else refused.
//! - parse never panics and accepts exactly what the reference accepts;
//!   errors name the template;
//! - `required_args` is the highest index used plus one;
//! - `check_arity(n)` refuses every template that needs more than `n`
//!   arguments (naming the template) and accepts only ones that fit;
//! - rendering with the arguments a template needs equals the reference
//!   rendering, the same for a `String`
//!   argument and a 1-tuple.
#![no_main]

use ac_core::KeyTemplate;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    template: String,
    args: Vec<String>,
}

#[derive(Debug)]
enum Part {
    Literal(String),
    Arg(usize),
}

/// The documented template rules, independently of the crate.
fn reference_parse(template: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let (mut next_auto, mut auto, mut indexed) = (0, false, false);
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            literal.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            literal.push('}');
            rest = after;
        } else if c == '}' {
            return None;
        } else if c == '{' {
            let close = rest.find('}')?;
            let inner = &rest[1..close];
            let index = if inner.is_empty() {
                auto = true;
                next_auto += 1;
                next_auto - 1
            } else if inner.bytes().all(|b| b.is_ascii_digit()) {
                indexed = true;
                let index = inner.trim_start_matches('0');
                if index.len() > 2 {
                    return None;
                }
                let index: usize = if index.is_empty() {
                    0
                } else {
                    index.parse().ok()?
                };
                if index >= 64 {
                    return None;
                }
                index
            } else {
                return None;
            };
            if auto && indexed {
                return None;
            }
            parts.push(Part::Literal(std::mem::take(&mut literal)));
            parts.push(Part::Arg(index));
            rest = &rest[close + 1..];
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    parts.push(Part::Literal(literal));
    Some(parts)
}

fn reference_render(parts: &[Part], args: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Arg(i) => out.push_str(args.get(*i).map_or("", String::as_str)),
        }
    }
    out
}

fn render(template: &KeyTemplate, args: &[String]) -> String {
    let a = |i: usize| args[i].clone();
    match args.len() {
        0 => template.render(&()),
        1 => {
            let single = template.render(&a(0));
            assert_eq!(
                single,
                template.render(&(a(0),)),
                "String and 1-tuple render differently"
            );
            single
        }
        2 => template.render(&(a(0), a(1))),
        3 => template.render(&(a(0), a(1), a(2))),
        4 => template.render(&(a(0), a(1), a(2), a(3))),
        5 => template.render(&(a(0), a(1), a(2), a(3), a(4))),
        6 => template.render(&(a(0), a(1), a(2), a(3), a(4), a(5))),
        7 => template.render(&(a(0), a(1), a(2), a(3), a(4), a(5), a(6))),
        _ => template.render(&(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7))),
    }
}

fuzz_target!(|input: Input| {
    let Input { template, mut args } = input;
    args.truncate(8);
    let named = format!("{template:?}");
    let parsed = KeyTemplate::parse(&template);
    let reference = reference_parse(&template);
    let (parsed, reference) = match (parsed, reference) {
        (Ok(parsed), Some(reference)) => (parsed, reference),
        (Err(e), None) => {
            assert!(
                e.to_string().contains(&named),
                "error does not name the template: {e}"
            );
            return;
        }
        (parsed, reference) => panic!("{template:?}: parsed {parsed:?}, reference {reference:?}"),
    };
    assert_eq!(parsed.source(), template);
    let needed = reference
        .iter()
        .filter_map(|p| match p {
            Part::Arg(i) => Some(i + 1),
            Part::Literal(_) => None,
        })
        .max()
        .unwrap_or(0);
    assert_eq!(parsed.required_args(), needed, "{template:?}");
    for arity in [0, needed.saturating_sub(1), needed, args.len()] {
        match parsed.check_arity(arity) {
            Ok(()) => assert!(
                needed <= arity,
                "{template:?} accepted for {arity} arguments"
            ),
            Err(e) => {
                assert!(
                    e.to_string().contains(&named),
                    "error does not name the template: {e}"
                );
                // The only reason to refuse today is a missing argument; the
                // key rules may refuse more (e.g. an unused argument).
            }
        }
        if needed > arity {
            assert!(
                parsed.check_arity(arity).is_err(),
                "{template:?} fits {arity} arguments"
            );
        }
    }
    // Rendering needs the arguments the template uses (`KeyArgs::write_arg`
    // is only called below the arity, which `check_arity` ensures).
    if needed <= args.len() {
        assert_eq!(
            render(&parsed, &args),
            reference_render(&reference, &args),
            "{template:?} {args:?}"
        );
    }
    if needed == 0 {
        assert_eq!(
            parsed.as_static(),
            Some(reference_render(&reference, &[]).as_str())
        );
    }
});
