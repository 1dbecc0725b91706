//! From the raw file to the model the cleaner runs on, one section at a time: each check names its
//! section and entry.

use super::raw::*;
use super::*;

/// Checks a parsed contract section by section; each error names the section and the entry.
pub(super) fn compile(raw: RawContract) -> Result<Contract, (Section, String)> {
    let at = |section: Section| move |message: String| (section, message);
    let mut columns: Vec<Column> = Vec::with_capacity(raw.columns.len());
    for (n, rc) in raw.columns.iter().enumerate() {
        let column = compile_column(rc, n, &columns).map_err(at(Section::Columns))?;
        columns.push(column);
    }
    let Layout {
        key,
        partition,
        control_totals,
    } = compile_layout(&raw, &columns).map_err(at(Section::Layout))?;
    let record_rules = compile_record_rules(&raw.record_rules, &columns, &index_of)
        .map_err(at(Section::RecordRules))?;
    let derived = compile_derived(&raw.derived, &columns).map_err(at(Section::Derived))?;
    let (date_formats, date_range) = compile_dates(&raw).map_err(at(Section::Dates))?;
    let mut profiles = BTreeMap::new();
    for (name, rp) in &raw.profiles {
        let profile = compile_profile(name, rp, &columns, &date_formats, &date_range)
            .map_err(at(Section::Profiles))?;
        profiles.insert(name.clone(), profile);
    }
    check_read_from_files(&raw, &columns).map_err(at(Section::Profiles))?;
    if raw.shape != Shape::Derived && !profiles.contains_key(&raw.default_profile) {
        return Err((
            Section::Profiles,
            format!(
                "default_profile `{}` is not among the profiles",
                raw.default_profile
            ),
        ));
    }
    check_wide(&raw, &columns).map_err(at(Section::Wide))?;
    check_warehouse(&raw, &columns).map_err(at(Section::Warehouse))?;
    Ok(Contract {
        dataset: raw.dataset,
        version: raw.version,
        description: raw.description,
        shape: raw.shape,
        columns,
        key,
        partition,
        control_totals,
        reject_threshold: raw.reject_threshold,
        nulls: NullTokens::new(&raw.null_tokens),
        record_rules,
        derived,
        profiles,
        default_profile: raw.default_profile,
        wide: raw.wide,
        warehouse: raw.warehouse,
    })
}

/// A contract read from vendor files names how (profiles, null tokens, date formats) and types
/// nothing the cleaner cannot parse; a derived one, whose rows a job computes, names none of it.
fn check_read_from_files(raw: &RawContract, columns: &[Column]) -> Result<(), String> {
    if raw.shape == Shape::Derived {
        let read_only: [(&str, bool); 5] = [
            ("profiles", !raw.profiles.is_empty()),
            ("default_profile", !raw.default_profile.is_empty()),
            ("null_tokens", !raw.null_tokens.is_empty()),
            ("date_formats", !raw.date_formats.is_empty()),
            ("record_rules", !raw.record_rules.is_empty()),
        ];
        if let Some((what, _)) = read_only.iter().find(|(_, given)| *given) {
            return Err(format!(
                "`{what}` is for contracts read from vendor files; shape = \"derived\" has none"
            ));
        }
        return Ok(());
    }
    if raw.null_tokens.is_empty() || raw.date_formats.is_empty() {
        return Err(
            "a contract read from vendor files needs `null_tokens` and `date_formats`".into(),
        );
    }
    if let Some(c) = columns.iter().find(|c| c.ty == ColumnType::Double) {
        return Err(format!(
            "column `{}`: type double is for derived contracts only (a vendor's number is a decimal)",
            c.name
        ));
    }
    Ok(())
}

/// The index of column `name`; `what` says who named it, in the error.
fn index_of(columns: &[Column], name: &str, what: &str) -> Result<usize, String> {
    columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| format!("{what} names unknown column `{name}`"))
}

/// One column entry (the `n`-th, 0-based), checked against the columns before it.
fn compile_column(rc: &RawColumn, n: usize, columns: &[Column]) -> Result<Column, String> {
    let at = format!("column `{}` (columns entry {})", rc.name, n + 1);
    if columns.iter().any(|c| c.name == rc.name) {
        return Err(format!("{at}: duplicate column name"));
    }
    if rc.name.is_empty()
        || !rc
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "{at}: a column name is letters, digits and `_` only"
        ));
    }
    let ty = match rc.ty {
        RawType::String => ColumnType::String,
        RawType::Enum => ColumnType::Enum,
        RawType::Date => ColumnType::Date,
        RawType::Int64 => ColumnType::Int64,
        RawType::Double => ColumnType::Double,
        RawType::Decimal => {
            let (Some(precision), Some(scale)) = (rc.precision, rc.scale) else {
                return Err(format!("{at}: a decimal needs `precision` and `scale`"));
            };
            if precision == 0 || precision > 38 || scale > precision {
                return Err(format!(
                    "{at}: decimal({precision},{scale}) is not valid (precision 1..=38, scale <= precision)"
                ));
            }
            ColumnType::Decimal { precision, scale }
        }
    };
    if !matches!(ty, ColumnType::Decimal { .. }) && (rc.precision.is_some() || rc.scale.is_some()) {
        return Err(format!(
            "{at}: `precision` and `scale` apply to decimals only"
        ));
    }
    let bound = |v: &Option<String>, key: &str| -> Result<Option<i128>, String> {
        let Some(v) = v else { return Ok(None) };
        let parsed = match ty {
            ColumnType::Decimal { precision, scale } => {
                parse_decimal(v.as_bytes(), precision, scale)
            }
            ColumnType::Int64 => parse_int64(v.as_bytes()).map(i128::from),
            _ => return Err(format!("{at}: `{key}` applies to numbers only")),
        };
        parsed.map(Some).map_err(|r| {
            format!("{at}: bound {key} = \"{v}\" does not fit the column's type ({r})")
        })
    };
    let lower = match (bound(&rc.ge, "ge")?, bound(&rc.gt, "gt")?) {
        (Some(_), Some(_)) => return Err(format!("{at}: give `ge` or `gt`, not both")),
        (Some(v), None) => Some((v, true)),
        (None, Some(v)) => Some((v, false)),
        (None, None) => None,
    };
    let upper = match (bound(&rc.le, "le")?, bound(&rc.lt, "lt")?) {
        (Some(_), Some(_)) => return Err(format!("{at}: give `le` or `lt`, not both")),
        (Some(v), None) => Some((v, true)),
        (None, Some(v)) => Some((v, false)),
        (None, None) => None,
    };
    let domain = if ty == ColumnType::Enum {
        if rc.values.is_empty() {
            return Err(format!("{at}: an enum needs `values`"));
        }
        let key = |s: &str| EnumDomain::lookup_key(s, rc.case_sensitive);
        let mut lookup = FastMap::default();
        for (i, v) in rc.values.iter().enumerate() {
            if lookup.insert(key(v), i as u16).is_some() {
                return Err(format!("{at}: value `{v}` listed twice"));
            }
        }
        for (alias, target) in &rc.value_aliases {
            let Some(i) = rc.values.iter().position(|v| v == target) else {
                return Err(format!(
                    "{at}: alias `{alias}` maps to `{target}`, which is not in `values`"
                ));
            };
            lookup.insert(key(alias), i as u16);
        }
        Some(EnumDomain::new(
            rc.values.clone(),
            lookup,
            rc.case_sensitive,
        ))
    } else {
        if !rc.values.is_empty() || !rc.value_aliases.is_empty() {
            return Err(format!(
                "{at}: `values` and `value_aliases` apply to enums only"
            ));
        }
        None
    };
    if rc.check.is_some() && ty != ColumnType::String {
        return Err(format!("{at}: `check` applies to string columns only"));
    }
    let default_from = match &rc.default_from {
        None => None,
        Some(d) => Some(DefaultFrom {
            column: index_of(columns, &d.column, &format!("{at}: default_from"))?,
            map: d.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    if rc.from_key_segment == Some(0) {
        return Err(format!(
            "{at}: from_key_segment counts from 1 (the file name)"
        ));
    }
    Ok(Column {
        name: rc.name.clone(),
        ty,
        required: rc.required,
        aliases: rc.aliases.clone(),
        bounds: Bounds { lower, upper },
        domain,
        check: rc.check,
        max_length: rc.max_length,
        from_key_segment: rc.from_key_segment,
        default_from,
        sensitive: rc.sensitive,
    })
}

/// The key, the partition column, the control totals and the reject threshold.
fn compile_layout(raw: &RawContract, columns: &[Column]) -> Result<Layout, String> {
    let key = raw
        .key
        .iter()
        .map(|k| index_of(columns, k, "key"))
        .collect::<Result<Vec<_>, _>>()?;
    let partition = index_of(columns, &raw.partition, "partition")?;
    if !matches!(
        columns[partition].ty,
        ColumnType::Date | ColumnType::Enum | ColumnType::String
    ) {
        return Err(format!(
            "partition column `{}` must be a date or text",
            raw.partition
        ));
    }
    if !columns[partition].required {
        return Err(format!(
            "partition column `{}` must be required",
            raw.partition
        ));
    }
    let control_totals = raw
        .control_totals
        .iter()
        .map(|c| {
            let i = index_of(columns, c, "control_totals")?;
            match columns[i].ty {
                ColumnType::Decimal { .. } | ColumnType::Int64 => Ok(i),
                _ => Err(format!("control_totals: column `{c}` is not a number")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..=1.0).contains(&raw.reject_threshold) {
        return Err(format!(
            "reject_threshold {} is not between 0 and 1",
            raw.reject_threshold
        ));
    }
    Ok(Layout {
        key,
        partition,
        control_totals,
    })
}

/// Where a file's rows are keyed, partitioned and totalled.
struct Layout {
    key: Vec<usize>,
    partition: usize,
    control_totals: Vec<usize>,
}

/// The contract's date formats and the range of dates it accepts.
fn compile_dates(
    raw: &RawContract,
) -> Result<(Vec<DateFormat>, std::ops::RangeInclusive<i32>), String> {
    // A derived contract reads no dates from text (check_read_from_files keeps its list empty).
    let date_formats = if raw.shape == Shape::Derived {
        Vec::new()
    } else {
        compile_formats(&raw.date_formats, "date_formats")?
    };
    let day = |text: &str| {
        let iso = [DateFormat::new("YYYY-MM-DD").map_err(|e| e.to_string())?];
        crate::parse::parse_date(text.as_bytes(), &iso)
            .map_err(|_| format!("date_range: `{text}` is not a YYYY-MM-DD date"))
    };
    let date_range = day(&raw.date_range[0])?..=day(&raw.date_range[1])?;
    if date_range.is_empty() {
        return Err("date_range: the first date is after the second".into());
    }
    Ok((date_formats, date_range))
}

/// One vendor profile, `name`, over the contract's columns, date formats and date range.
fn compile_profile(
    name: &str,
    rp: &RawProfile,
    columns: &[Column],
    date_formats: &[DateFormat],
    date_range: &std::ops::RangeInclusive<i32>,
) -> Result<Profile, String> {
    let at = format!("profile `{name}`");
    let encoding = match rp.encoding.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Encoding::Utf8,
        "shift_jis" | "shift-jis" | "cp932" | "windows-31j" => Encoding::ShiftJis,
        other => {
            return Err(format!(
                "{at}: unknown encoding `{other}` (utf-8, shift_jis)"
            ));
        }
    };
    let mut headers = HashMap::new();
    for (vendor, column) in &rp.headers {
        let i = index_of(columns, column, &format!("{at}: header `{vendor}`"))?;
        if headers.insert(header_key(vendor), i).is_some() {
            return Err(format!(
                "{at}: two vendor headers read as `{}`",
                header_key(vendor)
            ));
        }
    }
    let constants = rp
        .constants
        .iter()
        .map(|(c, v)| {
            Ok((
                index_of(columns, c, &format!("{at}: constants"))?,
                v.clone(),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let from_file_name = rp
        .from_file_name
        .iter()
        .map(|(c, spec)| {
            let column = index_of(columns, c, &format!("{at}: from_file_name"))?;
            if columns[column].ty != ColumnType::Date {
                return Err(format!("{at}: from_file_name column `{c}` is not a date"));
            }
            Ok(FileNameDate {
                column,
                prefix: spec.prefix.clone(),
                format: DateFormat::new(&spec.format).map_err(|e| format!("{at}: {e}"))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let date_formats = match &rp.date_formats {
        Some(f) => compile_formats(f, &format!("{at}: date_formats"))?,
        None => date_formats.to_vec(),
    };
    let mut shorten = vec![None; columns.len()];
    for (c, spec) in &rp.shorten {
        let i = index_of(columns, c, &format!("{at}: shorten"))?;
        if columns[i].ty != ColumnType::String || spec.to == 0 || spec.to >= spec.from {
            return Err(format!(
                "{at}: shorten `{c}` needs a string column and 0 < to < from"
            ));
        }
        shorten[i] = Some(Shorten {
            from: spec.from,
            to: spec.to,
        });
    }
    Ok(Profile {
        name: name.to_string(),
        encoding,
        headers,
        ignore: rp.ignore.iter().map(|h| header_key(h)).collect(),
        trailing_empty_column: rp.trailing_empty_column,
        constants,
        from_file_name,
        date_formats,
        date_range: date_range.clone(),
        shorten,
    })
}

/// The `[wide]` table, present exactly when the shape is wide, naming known columns.
fn check_wide(raw: &RawContract, columns: &[Column]) -> Result<(), String> {
    match (raw.shape, &raw.wide) {
        (Shape::Wide, None) => Err("shape = \"wide\" needs a [wide] table".into()),
        // The weekly features are weekly_trends', over each series' whole history: a wide file
        // alone holds a few of its weeks.
        (Shape::Wide, Some(_)) if !raw.derived.is_empty() => {
            Err("[[derived]] columns apply to records contracts; a series' trends are the weekly job's (weekly_trends)".into())
        }
        (Shape::Records, Some(_)) => Err("[wide] applies to shape = \"wide\" only".into()),
        (Shape::Wide, Some(w)) => {
            for c in [
                &w.source_column,
                &w.dataset_code_column,
                &w.date_column,
                &w.series_column,
                &w.value_column,
                &w.period_column,
            ] {
                index_of(columns, c, "[wide]")?;
            }
            if crate::parse::weekday_number(&w.week_ends_on).is_none() {
                return Err(format!(
                    "[wide]: week_ends_on `{}` is not a weekday",
                    w.week_ends_on
                ));
            }
            Ok(())
        }
        (Shape::Derived, Some(_)) => Err("[wide] applies to shape = \"wide\" only".into()),
        (Shape::Records | Shape::Derived, None) => Ok(()),
    }
}

/// The `[warehouse]` table's distribution and sort keys name known columns.
fn check_warehouse(raw: &RawContract, columns: &[Column]) -> Result<(), String> {
    for c in raw.warehouse.distkey.iter().chain(&raw.warehouse.sortkey) {
        index_of(columns, c, "[warehouse]")?;
    }
    Ok(())
}

fn compile_formats(formats: &[String], what: &str) -> Result<Vec<DateFormat>, String> {
    if formats.is_empty() {
        return Err(format!("{what}: at least one date format is needed"));
    }
    formats
        .iter()
        .map(|f| DateFormat::new(f).map_err(|e| format!("{what}: {e}")))
        .collect()
}

type IndexOf = dyn Fn(&[Column], &str, &str) -> Result<usize, String>;

fn compile_record_rules(
    raw: &[RawRecordRule],
    columns: &[Column],
    index_of: &IndexOf,
) -> Result<Vec<RecordRule>, String> {
    let typed = |name: &str, what: &str, want: fn(ColumnType) -> bool| -> Result<usize, String> {
        let i = index_of(columns, name, what)?;
        if want(columns[i].ty) {
            Ok(i)
        } else {
            Err(format!("{what}: column `{name}` has the wrong type"))
        }
    };
    let is_date = |t| t == ColumnType::Date;
    let is_dec = |t| matches!(t, ColumnType::Decimal { .. });
    raw.iter()
        .map(|r| match r {
            RawRecordRule::Matured { column, not_before } => Ok(RecordRule::Matured {
                column: typed(column, "record rule matured", is_date)?,
                not_before: typed(not_before, "record rule matured", is_date)?,
            }),
            RawRecordRule::MarketValueMismatch {
                market_value,
                par_value,
                price,
                relative,
                absolute,
            } => {
                let what = "record rule market_value_mismatch";
                let market_value = typed(market_value, what, is_dec)?;
                let rel = parse_decimal(relative.as_bytes(), 9, 4).map_err(|_| {
                    format!(
                        "{what}: relative = \"{relative}\" is not a decimal with at most 4 places"
                    )
                })?;
                let abs = parse_decimal(absolute.as_bytes(), 38, columns[market_value].ty.scale())
                    .map_err(|_| {
                        format!("{what}: absolute = \"{absolute}\" does not fit market_value")
                    })?;
                let par_value = typed(par_value, what, is_dec)?;
                let price = typed(price, what, is_dec)?;
                let digits = |c: usize| match columns[c].ty {
                    ColumnType::Decimal { precision, scale } => (precision, scale),
                    _ => (38, 0),
                };
                Ok(RecordRule::MarketValue {
                    market_value,
                    par_value,
                    price,
                    relative_bp: rel,
                    absolute: abs,
                    factors: MarketValueFactors::prove(
                        digits(market_value),
                        digits(par_value),
                        digits(price),
                        rel,
                        abs,
                    ),
                })
            }
            RawRecordRule::OhlcInconsistent {
                open,
                high,
                low,
                close,
            } => {
                let what = "record rule ohlc_inconsistent";
                let (o, h, l, c) = (
                    typed(open, what, is_dec)?,
                    typed(high, what, is_dec)?,
                    typed(low, what, is_dec)?,
                    typed(close, what, is_dec)?,
                );
                if [o, h, l, c].iter().any(|&i| columns[i].ty != columns[o].ty) {
                    return Err(format!(
                        "{what}: open, high, low and close must share one decimal type"
                    ));
                }
                Ok(RecordRule::Ohlc {
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                })
            }
        })
        .collect()
}

fn compile_derived(raw: &[RawDerived], columns: &[Column]) -> Result<Vec<Derived>, String> {
    let mut out: Vec<Derived> = Vec::new();
    for d in raw {
        let at = format!("derived `{}`", d.name);
        if columns.iter().any(|c| c.name == d.name) || out.iter().any(|o| o.name == d.name) {
            return Err(format!("{at}: name already used"));
        }
        let source = |name: &str| -> Result<Source, String> {
            if let Some(i) = columns.iter().position(|c| c.name == name) {
                Ok(Source::Column(i))
            } else if let Some(i) = out.iter().position(|o| o.name == name) {
                Ok(Source::Derived(i))
            } else {
                Err(format!(
                    "{at}: source `{name}` is neither a column nor an earlier derived column"
                ))
            }
        };
        let kind = match &d.kind {
            RawDerivedKind::Position { source: s, order } => {
                let source = source(s)?;
                let order: HashMap<String, i32> = order
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as i32 + 1))
                    .collect();
                let by_enum = match source {
                    Source::Column(c) => columns[c]
                        .domain
                        .as_ref()
                        .map(|d| d.values.iter().map(|v| order.get(v).copied()).collect())
                        .unwrap_or_default(),
                    Source::Derived(_) => Vec::new(),
                };
                DerivedKind::Position {
                    source,
                    order,
                    by_enum,
                }
            }
            RawDerivedKind::Bucket {
                source: s,
                bounds,
                labels,
                null_label,
            } => {
                if labels.len() != bounds.len() + 1 || !bounds.windows(2).all(|w| w[0] < w[1]) {
                    return Err(format!(
                        "{at}: a bucket needs ascending bounds and one more label than bounds"
                    ));
                }
                DerivedKind::Bucket {
                    source: source(s)?,
                    bounds: bounds.clone(),
                    labels: labels.clone(),
                    null_label: null_label.clone(),
                }
            }
            RawDerivedKind::DaysBetween { from, to } => DerivedKind::DaysBetween {
                from: source(from)?,
                to: source(to)?,
            },
        };
        out.push(Derived {
            name: d.name.clone(),
            kind,
        });
    }
    Ok(out)
}
