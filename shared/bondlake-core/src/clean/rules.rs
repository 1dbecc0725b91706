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
            factors,
        } => {
            let (mv, par, px) = (num(market_value)?, num(par_value)?, num(price)?);
            if let Some(f) = factors {
                let ok = market_value_within_unchecked(mv, par, px, relative_bp, f);
                return (!ok).then_some(Reason::MarketValueMismatch);
            }
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

impl MarketValueFactors {
    /// The factors for columns of these (precision, scale), or `None` when values of those types
    /// could overflow a product of [`market_value_within`] (which then tests each step).
    pub fn prove(
        mv: (u8, u8),
        par: (u8, u8),
        px: (u8, u8),
        relative_bp: i128,
        absolute: i128,
    ) -> Option<Self> {
        let p10 = |e: u32| 10i128.checked_pow(e);
        // A decimal of precision p holds at most p digits: its magnitude is below 10^p.
        let largest = |p: u8| p10(u32::from(p)).map(|x| x - 1);
        let (s_mv, s_par, s_px) = (u32::from(mv.1), u32::from(par.1), u32::from(px.1));
        let s = s_mv.max(s_par + s_px);
        let f_mv = p10(s - s_mv)?;
        let f_product = p10(s - s_par - s_px)?;
        let mv_s = largest(mv.0)?.checked_mul(f_mv)?;
        let x = largest(par.0)?
            .checked_mul(largest(px.0)?)?
            .checked_mul(f_product)?;
        // |mv_s × 100 − x| × 10⁴ and relative × x at their largest.
        mv_s.checked_mul(100)?.checked_add(x)?.checked_mul(10_000)?;
        relative_bp.checked_abs()?.checked_mul(x)?;
        let absolute = absolute
            .checked_mul(f_mv)?
            .checked_mul(100)?
            .checked_mul(10_000)?;
        Some(MarketValueFactors {
            mv: f_mv,
            product: f_product,
            absolute,
        })
    }
}

/// [`market_value_within`] without overflow tests, for columns whose types were proven unable to
/// overflow it ([`MarketValueFactors::prove`]): the same answer for every value they hold.
#[inline]
pub(crate) fn market_value_within_unchecked(
    mv: i128,
    par: i128,
    px: i128,
    relative_bp: i128,
    f: MarketValueFactors,
) -> bool {
    let x = par * px * f.product;
    let diff = (mv * f.mv * 100 - x).abs() * 10_000;
    diff <= (relative_bp * x).max(f.absolute)
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
                    Some(DerivedVal::Label(Some((_, l)))) => order.get(*l).copied(),
                    _ => None,
                },
            }),
            DerivedKind::Bucket {
                source,
                bounds,
                labels,
                null_label,
            } => DerivedVal::Label(match int_of(*source, out) {
                Some(x) => {
                    let i = bounds.iter().position(|&b| x < b).unwrap_or(bounds.len());
                    Some((i as u16, labels[i].as_str()))
                }
                None => null_label.as_deref().map(|l| (labels.len() as u16, l)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A value a decimal of precision `p` holds, from `raw`, with the extremes made likely.
    fn within(p: u8, raw: i128, edge: u8) -> i128 {
        let largest = 10i128.pow(u32::from(p)) - 1;
        match edge % 4 {
            0 => largest,
            1 => -largest,
            _ => raw % (largest + 1),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Wherever the factors are proven at contract load, the unchecked check answers as the
        /// checked one, for every value the three types hold (their extremes included).
        #[test]
        fn the_unchecked_market_value_check_agrees_where_it_is_proven(
            (p_mv, s_mv) in (1u8..=24).prop_flat_map(|p| (Just(p), 0..=p)),
            (p_par, s_par) in (1u8..=20).prop_flat_map(|p| (Just(p), 0..=p)),
            (p_px, s_px) in (1u8..=16).prop_flat_map(|p| (Just(p), 0..=p)),
            relative_bp in prop_oneof![0i128..=10_000, any::<i64>().prop_map(i128::from)],
            absolute in prop_oneof![0i128..=1_000_000, any::<i64>().prop_map(i128::from)],
            raw in any::<[i128; 3]>(),
            edges in any::<[u8; 3]>(),
        ) {
            let Some(f) = MarketValueFactors::prove(
                (p_mv, s_mv), (p_par, s_par), (p_px, s_px), relative_bp, absolute,
            ) else {
                return Ok(());
            };
            let mv = within(p_mv, raw[0], edges[0]);
            let par = within(p_par, raw[1], edges[1]);
            let px = within(p_px, raw[2], edges[2]);
            let checked = market_value_within(
                mv, u32::from(s_mv), par, u32::from(s_par), px, u32::from(s_px),
                relative_bp, absolute,
            );
            prop_assert_eq!(market_value_within_unchecked(mv, par, px, relative_bp, f), checked);
        }
    }

    #[test]
    fn the_holdings_contract_runs_its_market_value_check_unchecked_and_wide_types_do_not() {
        let contract = crate::contract::load_dataset("investor_holdings", None)
            .expect("the holdings contract");
        let factors = contract.record_rules.iter().find_map(|r| match r {
            RecordRule::MarketValue { factors, .. } => Some(*factors),
            _ => None,
        });
        assert!(matches!(factors, Some(Some(_))), "{factors:?}");
        // 38 digits times 38 digits cannot be proven to fit.
        assert_eq!(
            MarketValueFactors::prove((38, 2), (38, 2), (38, 6), 100, 1),
            None
        );
    }
}
