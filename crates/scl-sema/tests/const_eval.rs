//! Constant evaluation against exact 128-bit arithmetic: every constant expression the
//! generator writes either fits its declared type at every step, and then the checker folds
//! it to the exact result, or it does not, and the checker refuses it with E0218 (E0352 for
//! a division by a zero it computed), never with a wrapped value.
//!
//! The expressions are made of literals, unary minus (signed types) and the binary
//! operators; each step is typed at the declared type, as the checker types an untyped
//! constant expression from its context, so each intermediate result must fit that type.

use proptest::prelude::*;
use scl_catalogue::Target;
use scl_diagnostics::Files;
use scl_sema::hir::{ExprKind, Stmt};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug)]
struct IntTy {
    signed: bool,
    bits: u32,
}

impl IntTy {
    fn name(self) -> String {
        format!("{}{}", if self.signed { "i" } else { "u" }, self.bits)
    }
    fn min(self) -> i128 {
        if self.signed { -(1i128 << (self.bits - 1)) } else { 0 }
    }
    fn max(self) -> i128 {
        if self.signed { (1i128 << (self.bits - 1)) - 1 } else { (1i128 << self.bits) - 1 }
    }
    fn fits(self, v: i128) -> bool {
        (self.min()..=self.max()).contains(&v)
    }
}

#[derive(Clone, Debug)]
enum E {
    Lit(u64),
    Neg(Box<E>),
    Bin(&'static str, Box<E>, Box<E>),
    /// `a << n` or `a >> n`, `n` a literal.
    Shift(&'static str, Box<E>, u32),
}

impl E {
    fn text(&self) -> String {
        match self {
            E::Lit(v) => v.to_string(),
            E::Neg(x) => format!("-({})", x.text()),
            E::Bin(op, a, b) => format!("({} {op} {})", a.text(), b.text()),
            E::Shift(op, a, n) => format!("({} {op} {n})", a.text()),
        }
    }
}

type Codes = BTreeSet<&'static str>;

/// The reference: exact arithmetic, every step checked against `t`.
fn eval(e: &E, t: IntTy) -> Result<i128, Codes> {
    let over = || Err(Codes::from(["E0218"]));
    match e {
        E::Lit(v) => {
            let v = i128::from(*v);
            if t.fits(v) { Ok(v) } else { over() }
        }
        E::Neg(x) => {
            // `-literal` is folded as one literal; either way the result must fit.
            let v = match &**x {
                E::Lit(v) => -i128::from(*v),
                other => -eval(other, t)?,
            };
            if t.fits(v) { Ok(v) } else { over() }
        }
        E::Shift(op, a, n) => {
            // A left side in error is the one reported; the count is checked only after it.
            let a = eval(a, t)?;
            if *n >= t.bits {
                return over();
            }
            let v = if *op == "<<" { a.checked_mul(1i128 << n) } else { Some(a >> n) };
            match v {
                Some(v) if t.fits(v) => Ok(v),
                _ => over(),
            }
        }
        E::Bin(op, a, b) => {
            let (a, b) = (eval(a, t), eval(b, t));
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => {
                    let mut codes = a.err().unwrap_or_default();
                    codes.extend(b.err().unwrap_or_default());
                    return Err(codes);
                }
            };
            if matches!(*op, "/" | "%") && b == 0 {
                return Err(Codes::from(["E0352"]));
            }
            let v = match *op {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                "*" => a.checked_mul(b),
                "/" => a.checked_div(b),
                "%" => a.checked_rem(b),
                "&" => Some(a & b),
                "|" => Some(a | b),
                "^" => Some(a ^ b),
                _ => unreachable!(),
            };
            match v {
                Some(v) if t.fits(v) => Ok(v),
                _ => over(),
            }
        }
    }
}

fn int_ty() -> impl Strategy<Value = IntTy> {
    (any::<bool>(), prop::sample::select(vec![8u32, 16, 32, 64])).prop_map(|(signed, bits)| IntTy { signed, bits })
}

/// Literals near the edges of every width, small ones, and any.
fn literal() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..300,
        (0u32..64, -2i64..=2).prop_map(|(k, d)| (1u64 << k).wrapping_add(d as u64)),
        prop::sample::select(vec![127u64, 128, 255, 256, 32767, 32768, 65535, 65536, 2147483647, 2147483648, 4294967295, 4294967296, 9223372036854775807, 9223372036854775808, u64::MAX]),
        any::<u64>(),
    ]
}

fn expr(signed: bool) -> impl Strategy<Value = E> {
    let leaf = literal().prop_map(E::Lit);
    leaf.prop_recursive(4, 16, 2, move |inner| {
        let ops = prop::sample::select(vec!["+", "-", "*", "/", "%", "&", "|", "^"]);
        let mut arms = vec![
            (ops, inner.clone(), inner.clone()).prop_map(|(op, a, b)| E::Bin(op, Box::new(a), Box::new(b))).boxed(),
            (prop::sample::select(vec!["<<", ">>"]), inner.clone(), 0u32..70).prop_map(|(op, a, n)| E::Shift(op, Box::new(a), n)).boxed(),
        ];
        if signed {
            arms.push(inner.prop_map(|x| E::Neg(Box::new(x))).boxed());
        }
        prop::strategy::Union::new(arms)
    })
}

fn case() -> impl Strategy<Value = (IntTy, E)> {
    int_ty().prop_flat_map(|t| (Just(t), expr(t.signed)))
}

/// Checks `const X: T = e;` used in a hook; the folded value, or the error codes.
fn check(t: IntTy, e: &E) -> Result<i128, Codes> {
    let text = format!(
        "const X: {ty} = {e};\nglobal g: {ty};\npolicy p for spinlock {{\n    on acquired(l: lock) {{\n        g = X;\n    }}\n}}\n",
        ty = t.name(),
        e = e.text()
    );
    let mut files = Files::new();
    let id = files.add("const.scl", &text);
    let checked = scl_sema::check_file(&mut files, id, &scl_sema::Options { target: Some(Target::Syncord) });
    if checked.has_errors() {
        return Err(checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code.code).collect());
    }
    let hook = &checked.program.policy.as_ref().expect("a policy").hooks[0];
    match &hook.body.block.stmts[..] {
        [Stmt::Assign { value, .. }] => match value.kind {
            ExprKind::Const(v) => Ok(v),
            ref other => panic!("`g = X` is not a constant: {other:?}\n{text}"),
        },
        other => panic!("unexpected body {other:?}\n{text}"),
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("SCL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    #[test]
    fn constants_fold_exactly_or_are_refused((t, e) in case()) {
        let want = eval(&e, t);
        let got = check(t, &e);
        prop_assert_eq!(&got, &want, "`const X: {} = {};`", t.name(), e.text());
    }
}

/// The cases of the issue that found the wrapping, and their edges.
#[test]
fn known_cases() {
    let u8_ = IntTy { signed: false, bits: 8 };
    let u32_ = IntTy { signed: false, bits: 32 };
    let u64_ = IntTy { signed: false, bits: 64 };
    let bin = |op, a, b| E::Bin(op, Box::new(E::Lit(a)), Box::new(E::Lit(b)));
    assert_eq!(check(u8_, &bin("+", 200, 100)), Err(Codes::from(["E0218"])));
    assert_eq!(check(u8_, &bin("+", 200, 55)), Ok(255));
    assert_eq!(check(u32_, &bin("-", 3, 5)), Err(Codes::from(["E0218"])));
    assert_eq!(check(u64_, &bin("+", u64::MAX, 1)), Err(Codes::from(["E0218"])));
    assert_eq!(check(u64_, &bin("*", 1 << 32, 1 << 32)), Err(Codes::from(["E0218"])));
    assert_eq!(check(u8_, &E::Shift("<<", Box::new(E::Lit(3)), 7)), Err(Codes::from(["E0218"])));
    assert_eq!(check(u8_, &E::Shift("<<", Box::new(E::Lit(1)), 7)), Ok(128));
}
