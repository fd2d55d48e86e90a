//! Keys can never make two different calls share an entry by accident:
//! templates must place every argument, checked when wrapping.

use advanced_caching::cache;

#[test]
fn a_template_that_leaves_an_argument_out_is_refused_at_wrap_time() {
    // The report: (1, "eu") and (1, "us") returned each other's value.
    let error = cache(60)
        .key("profile:{}")
        .wrap(|(id, region): (u64, String)| format!("{id}@{region}"))
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"profile:{}\""),
        "names the template: {message}"
    );
    assert!(
        message.contains("does not use argument {1}"),
        "names the unused argument: {message}"
    );

    let error = cache(60)
        .key("profile:{1}")
        .try_wrap_async(|(id, region): (u64, String)| async move {
            Ok::<_, String>(format!("{id}@{region}"))
        })
        .unwrap_err();
    assert!(
        error.to_string().contains("does not use argument {0}"),
        "{error}"
    );
}

#[test]
fn a_static_key_on_a_function_with_arguments_is_refused() {
    let error = cache(60).key("user").wrap(|id: u64| id).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("\"user\""), "{message}");
    assert!(message.contains("static key"), "{message}");
    assert!(
        cache(60).key("flags").wrap(|()| 1).is_ok(),
        "no arguments: fine"
    );
}

#[test]
fn templates_placing_every_argument_keep_calls_apart() {
    let f = cache(60)
        .key("profile:{}:{}")
        .wrap(|(id, region): (u64, String)| format!("{id}@{region}"))
        .unwrap();
    assert_eq!(f.call((1, "eu".into())), "1@eu");
    assert_eq!(f.call((1, "us".into())), "1@us");
    assert_eq!(f.call((1, "eu".into())), "1@eu");
}

#[test]
fn a_key_closure_shares_an_entry_on_purpose() {
    let f = cache(60)
        .key(|(id, _region): &(u64, String)| format!("profile:{id}"))
        .wrap(|(id, region): (u64, String)| format!("{id}@{region}"))
        .unwrap();
    assert_eq!(f.call((1, "eu".into())), "1@eu");
    assert_eq!(
        f.call((1, "us".into())),
        "1@eu",
        "one entry per id, as asked"
    );
}
