//! Cache keys: static strings, templates over the arguments, or closures.
//!
//! A template is parsed once, when the cached function is built: `"{}"`
//! placeholders take the arguments in order, `"{0}"`/`"{1}"` by index, and
//! `"{{"`/`"}}"` are literal braces. Anything else (a named placeholder, a
//! format spec, an unclosed brace, a placeholder beyond the arguments, or
//! mixing `{}` with `{0}`) is an [`Error::InvalidTemplate`] naming the
//! template — never a silent fallback to the raw template as a key.
//!
//! A template must place every argument: one that leaves an argument out
//! (`"profile:{}"` over `(u64, String)`), or a static key on a function
//! whose arguments are not `()`, is refused, since calls that differ only in
//! the missing argument would share one entry and return each other's
//! values. To share an entry on purpose, pass a key closure.
//!
//! Arguments are inserted verbatim, as the Python package does (so both
//! render the same keys): `"{0}:{1}"` over `("a:b", "c")` and `("a", "b:c")`
//! gives `"a:b:c"` twice. Where string arguments may contain the
//! separator, use a key closure that escapes or length-prefixes them (for
//! example `format!("{}:{}:{}", a.len(), a, b)`), or a separator the
//! arguments cannot contain.
//!
//! A hit with a template key renders into a reused thread-local buffer, so
//! it does not allocate; the key is copied to the heap only on a miss.

use std::cell::RefCell;
use std::fmt::{self, Display, Write as _};
use std::sync::Arc;

use crate::Error;

/// The arguments of a cached function, as seen by key templates.
///
/// A function of one argument takes it directly; a function of several takes
/// a tuple, and `"{0}"`, `"{1}"`, … index into it. Implemented for `()`,
/// integers, floats, `bool`, `char`, string types, and tuples of up to eight
/// [`Display`] values. For other argument types use a 1-tuple (`(x,)`) or a
/// key closure.
pub trait KeyArgs {
    /// How many arguments there are.
    const ARITY: usize;

    /// Appends argument `index` (`< ARITY`) to `out`.
    fn write_arg(&self, index: usize, out: &mut String);
}

impl KeyArgs for () {
    const ARITY: usize = 0;
    fn write_arg(&self, _index: usize, _out: &mut String) {}
}

macro_rules! single_arg {
    ($($t:ty),*) => {$(
        impl KeyArgs for $t {
            const ARITY: usize = 1;
            #[inline]
            fn write_arg(&self, _index: usize, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
single_arg!(f32, f64, bool, char);

macro_rules! integer_arg {
    ($($t:ty),*) => {$(
        impl KeyArgs for $t {
            const ARITY: usize = 1;
            #[inline]
            fn write_arg(&self, _index: usize, out: &mut String) {
                // itoa takes a few ns; the `fmt` machinery about 20.
                out.push_str(itoa::Buffer::new().format(*self));
            }
        }
    )*};
}
integer_arg!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

macro_rules! string_arg {
    ($($t:ty),*) => {$(
        impl KeyArgs for $t {
            const ARITY: usize = 1;
            #[inline]
            fn write_arg(&self, _index: usize, out: &mut String) {
                out.push_str(self);
            }
        }
    )*};
}
string_arg!(
    String,
    &'static str,
    Box<str>,
    Arc<str>,
    std::borrow::Cow<'static, str>
);

macro_rules! tuple_args {
    ($n:expr; $($name:ident $idx:tt),+) => {
        impl<$($name: Display),+> KeyArgs for ($($name,)+) {
            const ARITY: usize = $n;
            #[inline]
            fn write_arg(&self, index: usize, out: &mut String) {
                match index {
                    $($idx => { let _ = write!(out, "{}", self.$idx); })+
                    _ => {}
                }
            }
        }
    };
}
tuple_args!(1; A 0);
tuple_args!(2; A 0, B 1);
tuple_args!(3; A 0, B 1, C 2);
tuple_args!(4; A 0, B 1, C 2, D 3);
tuple_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// More placeholders than any [`KeyArgs`] implementation has arguments.
const MAX_ARGS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Arg(usize),
}

/// A parsed key template such as `"user:{}"` or `"order:{0}:{1}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    source: Box<str>,
    parts: Box<[Part]>,
}

impl KeyTemplate {
    /// Parses `template`.
    ///
    /// ```
    /// use ac_core::KeyTemplate;
    /// let t = KeyTemplate::parse("order:{0}:{1}").unwrap();
    /// assert_eq!(t.render(&(7u64, 9u64)), "order:7:9");
    /// assert!(KeyTemplate::parse("user:{user_id}").is_err());
    /// ```
    pub fn parse(template: &str) -> Result<Self, Error> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut auto = 0usize;
        let (mut saw_auto, mut saw_index) = (false, false);
        let mut chars = template.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(Error::template(
                        template,
                        format!("unmatched '}}' at byte {at}; write '}}}}' for a literal brace"),
                    ));
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(Error::template(
                            template,
                            format!("unclosed '{{' at byte {at}; write '{{{{' for a literal brace"),
                        ));
                    }
                    let index = if name.is_empty() {
                        saw_auto = true;
                        auto += 1;
                        auto - 1
                    } else if name.bytes().all(|b| b.is_ascii_digit()) {
                        saw_index = true;
                        match name.parse::<usize>() {
                            Ok(index) if index < MAX_ARGS => index,
                            _ => {
                                return Err(Error::template(
                                    template,
                                    format!(
                                        "placeholder {{{name}}} is beyond any function's arguments"
                                    ),
                                ));
                            }
                        }
                    } else {
                        return Err(Error::template(
                            template,
                            format!(
                                "placeholder {{{name}}} is not supported: use {{}} or {{0}}, {{1}}, … \
                                 to index the arguments, or a key closure"
                            ),
                        ));
                    };
                    if saw_auto && saw_index {
                        return Err(Error::template(
                            template,
                            "cannot mix automatic {} and indexed {0} placeholders",
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                    }
                    parts.push(Part::Arg(index));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        Ok(Self {
            source: template.into(),
            parts: parts.into(),
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The highest argument index used plus one (0 for a static key).
    pub fn required_args(&self) -> usize {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Arg(i) => Some(i + 1),
                Part::Literal(_) => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The key itself if the template has no placeholders.
    pub fn as_static(&self) -> Option<&str> {
        match &*self.parts {
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Checks that the template fits a function of `arity` arguments: no
    /// placeholder beyond them, and every one of them placed in the key.
    /// A template that left an argument out would give calls that differ
    /// only in it one shared entry, each returning the other's value.
    ///
    /// ```
    /// use ac_core::KeyTemplate;
    /// assert!(KeyTemplate::parse("order:{0}:{1}").unwrap().check_arity(2).is_ok());
    /// let error = KeyTemplate::parse("profile:{}").unwrap().check_arity(2).unwrap_err();
    /// assert!(error.to_string().contains("does not use argument {1}"));
    /// assert!(KeyTemplate::parse("flags").unwrap().check_arity(1).is_err());
    /// ```
    pub fn check_arity(&self, arity: usize) -> Result<(), Error> {
        let plural = if arity == 1 { "" } else { "s" };
        let needed = self.required_args();
        if needed > arity {
            return Err(Error::template(
                &self.source,
                format!(
                    "placeholder {{{}}} is beyond the function's {arity} argument{plural}",
                    needed - 1
                ),
            ));
        }
        let used = |index: usize| self.parts.contains(&Part::Arg(index));
        if let Some(unused) = (0..arity).find(|&index| !used(index)) {
            let problem = if self.as_static().is_some() {
                format!(
                    "is a static key, but the function takes {arity} argument{plural}: every \
                     call would share one entry"
                )
            } else {
                format!(
                    "does not use argument {{{unused}}} of the function's {arity} arguments: \
                     calls that differ only in it would share one entry"
                )
            };
            return Err(Error::template(
                &self.source,
                format!(
                    "{problem}; place every argument in the template, or pass a key closure \
                     to share an entry on purpose"
                ),
            ));
        }
        Ok(())
    }

    /// Appends the key for `args` to `out`.
    pub fn render_into<A: KeyArgs>(&self, args: &A, out: &mut String) {
        for part in &*self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Arg(i) => args.write_arg(*i, out),
            }
        }
    }

    /// The key for `args`.
    pub fn render<A: KeyArgs>(&self, args: &A) -> String {
        let mut out = String::new();
        self.render_into(args, &mut out);
        out
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A key closure, as stored by a [`KeySpec`].
pub type KeyFn<A> = Arc<dyn Fn(&A) -> String + Send + Sync>;

/// How a cached function turns its arguments into a key; built once from
/// a [`KeySource`] and validated then.
pub enum KeySpec<A> {
    /// The same key for every call.
    Static(Box<str>),
    /// A template rendered with the arguments.
    Template(KeyTemplate, fn(&KeyTemplate, &A, &mut String)),
    /// A user closure.
    Closure(KeyFn<A>),
}

impl<A> fmt::Debug for KeySpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(s) => f.debug_tuple("Static").field(s).finish(),
            Self::Template(t, _) => f.debug_tuple("Template").field(&t.source()).finish(),
            Self::Closure(_) => f.write_str("Closure"),
        }
    }
}

thread_local! {
    static KEY_BUF: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<A> KeySpec<A> {
    /// The key as the user gave it, for messages: the template, or `<closure>`.
    pub fn describe(&self) -> &str {
        match self {
            Self::Static(key) => key,
            Self::Template(template, _) => template.source(),
            Self::Closure(_) => "<closure>",
        }
    }

    /// Calls `f` with the key for `args`. Template keys are rendered into a
    /// reused thread-local buffer, so this allocates only for closure keys.
    /// `f` should not call back into cached functions (that still works, but
    /// allocates a key).
    #[inline]
    pub fn with_key<R>(&self, args: &A, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Self::Static(key) => f(key),
            Self::Template(template, render) => {
                let mut f = Some(f);
                let reused = KEY_BUF.try_with(|cell| {
                    let mut buf = cell.try_borrow_mut().ok()?;
                    buf.clear();
                    render(template, args, &mut buf);
                    Some((f.take()?)(&buf))
                });
                match (reused, f) {
                    (Ok(Some(out)), _) => out,
                    (_, Some(f)) => {
                        let mut key = String::new();
                        render(template, args, &mut key);
                        f(&key)
                    }
                    // `f` was taken, so it ran and returned.
                    (_, None) => unreachable!("key callback ran without a result"),
                }
            }
            Self::Closure(key_fn) => f(&key_fn(args)),
        }
    }

    /// The key for `args`, owned.
    pub fn key(&self, args: &A) -> String {
        self.with_key(args, str::to_owned)
    }
}

/// Something a builder's `.key(..)` accepts: a template string (checked
/// against the arguments' [`KeyArgs::ARITY`]) or a closure `Fn(&A) -> String`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a key for a function taking `{A}`",
    label = "pass a template string, or a closure `|args: &{A}| -> String`",
    note = "template keys need the arguments to implement `KeyArgs`; for other types use a 1-tuple or a key closure"
)]
pub trait KeySource<A> {
    /// Validates and compiles the key.
    fn into_key_spec(self) -> Result<KeySpec<A>, Error>;
}

fn template_spec<A: KeyArgs>(template: &str) -> Result<KeySpec<A>, Error> {
    let parsed = KeyTemplate::parse(template)?;
    parsed.check_arity(A::ARITY)?;
    Ok(match parsed.as_static() {
        Some(key) => KeySpec::Static(key.into()),
        None => KeySpec::Template(parsed, |t, args, out| t.render_into(args, out)),
    })
}

impl<A: KeyArgs> KeySource<A> for &str {
    fn into_key_spec(self) -> Result<KeySpec<A>, Error> {
        template_spec(self)
    }
}

impl<A: KeyArgs> KeySource<A> for String {
    fn into_key_spec(self) -> Result<KeySpec<A>, Error> {
        template_spec(&self)
    }
}

impl<A, F> KeySource<A> for F
where
    F: Fn(&A) -> String + Send + Sync + 'static,
{
    fn into_key_spec(self) -> Result<KeySpec<A>, Error> {
        Ok(KeySpec::Closure(Arc::new(self)))
    }
}

#[cfg(test)]
mod tests;
