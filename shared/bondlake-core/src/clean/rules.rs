//! Record-level rules, derived columns and partition keys: what runs after every column parsed.

use super::*;

/// Applies one record-level rule; `Some(reason)` when the record breaks it.
pub(super) fn record_rule(
    rule: &RecordRule,
    row: &[Val<'_>],
    columns: &[Column],
) -> Option<Reason> {
    let num = |i: usize| match row[i] {
        Val::Num(n) => Some(n),
        _ => None,
    };
    match *rule {
        RecordRule::Matured { column, not_before } => match (row[column], row[not_before]) {
            (Val::Date(m), Val::Date(a)) if m < a => Some(Reason::Matured),
            _ => None,
        },
        RecordRule::MarketValue {
            market_value,
            par_value,
            price,
            relative_bp,
            absolute,
        } => {
            let (mv, par, px) = (num(market_value)?, num(par_value)?, num(price)?);
            let (s_mv, s_par, s_px) = (
                u32::from(columns[market_value].ty.scale()),
                u32::from(columns[par_value].ty.scale()),
                u32::from(columns[price].ty.scale()),
            );
            let ok = market_value_within(mv, s_mv, par, s_par, px, s_px, relative_bp, absolute);
            (!ok).then_some(Reason::MarketValueMismatch)
        }
        RecordRule::Ohlc {
            open,
            high,
            low,
            close,
        } => {
            let (o, h, l, c) = (num(open)?, num(high)?, num(low)?, num(close)?);
            let ok = l <= o && o <= h && l <= c && c <= h;
            (!ok).then_some(Reason::OhlcInconsistent)
        }
    }
}

/// |mv − par × price / 100| ≤ max(relative × par × price / 100, absolute), in exact integers
/// (docs/datasets.md, decision 8). `relative_bp` is the relative tolerance × 10⁴; `absolute` is at the mv's scale.
#[allow(clippy::too_many_arguments)]
pub(crate) fn market_value_within(
    mv: i128,
    s_mv: u32,
    par: i128,
    s_par: u32,
    px: i128,
    s_px: u32,
    relative_bp: i128,
    absolute: i128,
) -> bool {
    let s = s_mv.max(s_par + s_px);
    let p10 = |e: u32| 10i128.checked_pow(e);
    let check = || -> Option<bool> {
        let mv_s = mv.checked_mul(p10(s - s_mv)?)?;
        let x = par.checked_mul(px)?.checked_mul(p10(s - s_par - s_px)?)?; // par × price at scale s
        let abs_s = absolute.checked_mul(p10(s - s_mv)?)?;
        // ×100 removes the "/ 100", ×10⁴ the basis points.
        let diff = mv_s
            .checked_mul(100)?
            .checked_sub(x)?
            .checked_abs()?
            .checked_mul(10_000)?;
        let tol = relative_bp
            .checked_mul(x)?
            .max(abs_s.checked_mul(100)?.checked_mul(10_000)?);
        Some(diff <= tol)
    };
    check().unwrap_or(false)
}

/// Computes the derived columns of one clean row into `out` (records shape: position, bucket,
/// days_between).
pub(crate) fn derive_row<'c>(
    contract: &'c Contract,
    row: &[Val<'_>],
    out: &mut Vec<DerivedVal<'c>>,
) {
    out.clear();
    for d in &contract.derived {
        let int_of = |s: Source, out: &[DerivedVal<'c>]| -> Option<i64> {
            match s {
                Source::Column(i) => match row[i] {
                    Val::Date(x) => Some(i64::from(x)),
                    Val::Num(x) => i64::try_from(x).ok(),
                    _ => None,
                },
                Source::Derived(i) => match out.get(i) {
                    Some(DerivedVal::Int(x)) => x.map(i64::from),
                    _ => None,
                },
            }
        };
        let v = match &d.kind {
            DerivedKind::Position {
                source,
                order,
                by_enum,
            } => DerivedVal::Int(match *source {
                Source::Column(i) => match row[i] {
                    Val::Enum(e) => by_enum.get(e as usize).copied().flatten(),
                    _ => None,
                },
                Source::Derived(i) => match out.get(i) {
                    Some(DerivedVal::Label(Some(l))) => order.get(*l).copied(),
                    _ => None,
                },
            }),
            DerivedKind::Bucket {
                source,
                bounds,
                labels,
                null_label,
            } => DerivedVal::Label(match int_of(*source, out) {
                Some(x) => Some(
                    labels[bounds.iter().position(|&b| x < b).unwrap_or(bounds.len())].as_str(),
                ),
                None => null_label.as_deref(),
            }),
            DerivedKind::DaysBetween { from, to } => {
                DerivedVal::Int(match (int_of(*from, out), int_of(*to, out)) {
                    (Some(a), Some(b)) => i32::try_from(b - a).ok(),
                    _ => None,
                })
            }
        };
        out.push(v);
    }
}

/// The partition value of a row.
pub(crate) fn part_key(v: Val<'_>, contract: &Contract, scratch: &str) -> PartKey {
    match v {
        Val::Date(d) => PartKey::Date(d),
        Val::Enum(i) => PartKey::Text(
            contract.columns[contract.partition]
                .domain
                .as_ref()
                .map(|d| d.values[i as usize].clone())
                .unwrap_or_default(),
        ),
        Val::Str(s) => PartKey::Text(s.to_string()),
        Val::Scratch(a, b) => PartKey::Text(scratch[a as usize..b as usize].to_string()),
        Val::Num(n) => PartKey::Text(n.to_string()),
        Val::Null => PartKey::Text(String::new()),
    }
}
