//! Parser tests on embedded samples. Expected cross rates are worked out by hand in the comments
//! (rate(INR) / rate(X), then 6 decimals, half away from zero).

use chrono::NaiveDate;
use radfin_domain::fx::FxRate;
use radfin_domain::money::Currency;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;

const DAILY: &str = include_str!("../../tests/fixtures/eurofxref-daily.xml");

/// Three days, newest first as the ECB writes them; 2026-01-05 has no INR.
const HIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
	<Cube>
		<Cube time="2026-01-06">
			<Cube currency="USD" rate="1.0790"/><Cube currency="JPY" rate="161.87"/>
			<Cube currency="GBP" rate="0.8612"/><Cube currency="INR" rate="90.1234"/>
		</Cube>
		<Cube time="2026-01-05">
			<Cube currency="USD" rate="1.0823"/><Cube currency="GBP" rate="0.8456"/>
		</Cube>
		<Cube time="2026-01-02">
			<Cube currency="USD" rate="1.0951"/><Cube currency="GBP" rate="0.8601"/>
			<Cube currency="INR" rate="88.9"/>
		</Cube>
	</Cube>
</gesmes:Envelope>
"#;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn rate(date: &str, currency: Currency, inr_per_unit: Decimal) -> FxRate {
    FxRate { rate_date: d(date), currency, inr_per_unit, source: "ECB".to_owned() }
}

/// The rates of [`DAILY`], sorted by currency code.
fn daily_rates() -> Vec<FxRate> {
    vec![
        // 89.5 / 3.9745 = 22.5185557… → 22.518556
        rate("2026-01-05", Currency::AED, dec!(22.518556)),
        // INR per EUR is the INR quote itself
        rate("2026-01-05", Currency::EUR, dec!(89.5)),
        // 89.5 / 0.8456 = 105.8420056… → 105.842006
        rate("2026-01-05", Currency::GBP, dec!(105.842006)),
        // 89.5 / 162.50 = 0.5507692… → 0.550769
        rate("2026-01-05", Currency::JPY, dec!(0.550769)),
        // 89.5 / 1.0823 = 82.6942622… → 82.694262
        rate("2026-01-05", Currency::USD, dec!(82.694262)),
    ]
}

fn ecb(xml: &str) -> Result<Parsed, FeedError> {
    ecb::parse(xml.as_bytes(), "ECB")
}

fn ecb_err(xml: &str) -> FeedError {
    match ecb(xml) {
        Ok(parsed) => panic!("expected an error, parsed {parsed:?}"),
        Err(e) => e,
    }
}

fn json(body: &str) -> Result<Parsed, FeedError> {
    json::parse(body.as_bytes(), "ECB")
}

fn json_err(body: &str) -> FeedError {
    match json(body) {
        Ok(parsed) => panic!("expected an error, parsed {parsed:?}"),
        Err(e) => e,
    }
}

/// An error with its causes, as the schedule logs it.
fn chain(e: &FeedError) -> String {
    ErrorChain(e).to_string()
}

/// [`DAILY`] with one quote replaced.
fn daily_with(from: &str, to: &str) -> String {
    assert!(DAILY.contains(from), "{from} is not in the sample");
    DAILY.replacen(from, to, 1)
}

fn quote(date: &str, currency: &str) -> Location {
    Location::Quote(d(date), currency.to_owned())
}

#[test]
fn daily_file_gives_inr_per_unit_of_each_currency_and_eur() {
    let rates = parse_ecb_xml(DAILY.as_bytes(), "ECB").unwrap();
    assert_eq!(rates, daily_rates());
    assert!(rates.iter().all(|r| r.source == "ECB"));
    let other = parse_ecb_xml(DAILY.as_bytes(), "ECB-MIRROR").unwrap();
    assert!(other.iter().all(|r| r.source == "ECB-MIRROR"));
}

#[test]
fn hist_file_gives_every_day_and_skips_a_day_without_inr() {
    let parsed = ecb(HIST).unwrap();
    assert_eq!(parsed.days_without_inr, vec![d("2026-01-05")]);
    let expected = vec![
        rate("2026-01-02", Currency::EUR, dec!(88.9)),
        // 88.9 / 0.8601 = 103.3600744… → 103.360074
        rate("2026-01-02", Currency::GBP, dec!(103.360074)),
        // 88.9 / 1.0951 = 81.1798009… → 81.179801
        rate("2026-01-02", Currency::USD, dec!(81.179801)),
        rate("2026-01-06", Currency::EUR, dec!(90.1234)),
        // 90.1234 / 0.8612 = 104.6486298… → 104.648630
        rate("2026-01-06", Currency::GBP, dec!(104.648630)),
        // 90.1234 / 161.87 = 0.5567640… → 0.556764
        rate("2026-01-06", Currency::JPY, dec!(0.556764)),
        // 90.1234 / 1.0790 = 83.5249304… → 83.524930
        rate("2026-01-06", Currency::USD, dec!(83.524930)),
    ];
    assert_eq!(parsed.finish("ECB"), expected);
}

#[test]
fn a_long_history_gives_every_day() {
    let mut xml = String::from(
        r#"<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"><Cube>"#,
    );
    let first = d("2020-01-01");
    let days = 1000;
    for i in 0..days {
        let date = first + chrono::Days::new(i);
        xml.push_str(&format!(
            r#"<Cube time="{date}"><Cube currency="USD" rate="1.25"/><Cube currency="INR" rate="{}.5"/></Cube>"#,
            80 + i % 10
        ));
    }
    xml.push_str("</Cube></gesmes:Envelope>");
    let rates = parse_ecb_xml(xml.as_bytes(), "ECB").unwrap();
    assert_eq!(rates.len(), 2 * 1000);
    // day 999: INR 89.5 per EUR; 89.5 / 1.25 = 71.6 INR per USD
    let last = first + chrono::Days::new(days - 1);
    assert_eq!(
        &rates[rates.len() - 2..],
        [rate(&last.to_string(), Currency::EUR, dec!(89.5)), rate(&last.to_string(), Currency::USD, dec!(71.6))]
    );
}

#[test]
fn namespace_prefixes_do_not_matter() {
    let gesmes = "http://www.gesmes.org/xml/2002-08-01";
    let ecb_ns = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref";
    let quotes = r#"<Q:Cube currency="USD" rate="1.0823"/><Q:Cube currency="JPY" rate="162.50"/>
        <Q:Cube currency="GBP" rate="0.8456"/><Q:Cube currency="INR" rate="89.5"/>
        <Q:Cube currency="AED" rate="3.9745"/>"#;
    let variants = [
        // both prefixed, other names
        format!(
            r#"<env:Envelope xmlns:env="{gesmes}" xmlns:fx="{ecb_ns}"><env:subject>x</env:subject>
            <fx:Cube><fx:Cube time="2026-01-05">{}</fx:Cube></fx:Cube></env:Envelope>"#,
            quotes.replace("Q:", "fx:")
        ),
        // the envelope's namespace as the default, the cubes prefixed
        format!(
            r#"<Envelope xmlns="{gesmes}" xmlns:e="{ecb_ns}"><subject>x</subject><Sender><name>y</name></Sender>
            <e:Cube><e:Cube time="2026-01-05">{}</e:Cube></e:Cube></Envelope>"#,
            quotes.replace("Q:", "e:")
        ),
        // the cubes' namespace declared on the outer cube, as the default
        format!(
            r#"<g:Envelope xmlns:g="{gesmes}"><Cube xmlns="{ecb_ns}"><Cube time="2026-01-05">{}</Cube></Cube></g:Envelope>"#,
            quotes.replace("Q:", "")
        ),
    ];
    for xml in &variants {
        assert_eq!(parse_ecb_xml(xml.as_bytes(), "ECB").unwrap(), daily_rates(), "{xml}");
    }
}

#[test]
fn only_billable_currencies_are_returned() {
    let xml = daily_with(
        "<Cube currency='AED' rate='3.9745'/>",
        "<Cube currency='XAU' rate='0.0004'/><Cube currency='XDR' rate='0.81'/>\
         <Cube currency='ZZZ' rate='2'/><Cube currency='ISK' rate='150'/>",
    );
    let rates = parse_ecb_xml(xml.as_bytes(), "ECB").unwrap();
    let codes: Vec<_> = rates.iter().map(|r| r.currency.code()).collect();
    // INR is the base; XAU (a metal), XDR (special) and ZZZ (unknown) are not money radfin bills in
    assert_eq!(codes, ["EUR", "GBP", "ISK", "JPY", "USD"]);
    // 89.5 / 150 = 0.59666… → 0.596667
    assert_eq!(rates[2].inr_per_unit, dec!(0.596667));
}

#[test]
fn a_feed_whose_only_day_lacks_inr_yields_nothing() {
    let xml = daily_with("<Cube currency='INR' rate='89.5'/>", "");
    let parsed = ecb(&xml).unwrap();
    assert_eq!(parsed.days_without_inr, vec![d("2026-01-05")]);
    assert!(parsed.rates.is_empty());
    let empty_day = r#"<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
        xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"><Cube><Cube time="2026-01-05"/></Cube></gesmes:Envelope>"#;
    assert_eq!(ecb(empty_day).unwrap().days_without_inr, vec![d("2026-01-05")]);
}

#[test]
fn malformed_xml_is_refused() {
    for xml in [
        // cut inside a tag
        &DAILY[..DAILY.find("rate='0.8456'").unwrap()],
        // mismatched end tag
        &daily_with("</Cube>\n\t</Cube>", "</Cube>\n\t</Cub>"),
        // repeated attribute
        &daily_with("rate='1.0823'", "rate='1.0823' rate='1.09'"),
        // unknown entity
        &daily_with("rate='1.0823'", "rate='1&bogus;'"),
    ] {
        let e = ecb_err(xml);
        assert!(matches!(e, FeedError::Xml { .. }), "{e:?} for {xml}");
        assert!(e.to_string().starts_with("malformed xml at byte "), "{e}");
    }
    // cut between elements: the document ends inside the envelope
    let cut = &DAILY[..DAILY.find("<Cube currency='GBP'").unwrap()];
    assert!(matches!(ecb_err(cut), FeedError::Truncated { .. } | FeedError::Xml { .. }));
    assert!(matches!(ecb_err(""), FeedError::WrongRoot { .. }));
    assert!(matches!(ecb_err("this is not xml"), FeedError::WrongRoot { .. }));
}

#[test]
fn a_wrong_root_or_namespace_is_refused() {
    // unprefixed, the envelope falls into the default (eurofxref) namespace
    let unprefixed = DAILY.replace("gesmes:Envelope", "Envelope").replace(" xmlns:gesmes=", " xmlns:unused=");
    let e = ecb_err(&unprefixed);
    let found = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}Envelope";
    assert!(matches!(&e, FeedError::WrongRoot { found: f } if f == found), "{e:?}");
    let e = ecb_err("<Envelope><Cube/></Envelope>");
    assert!(matches!(&e, FeedError::WrongRoot { found } if found == "Envelope (in no namespace)"), "{e:?}");

    let other_ns = DAILY.replace("http://www.gesmes.org/xml/2002-08-01", "http://example.com/gesmes");
    let e = ecb_err(&other_ns);
    assert_eq!(
        e.to_string(),
        "root element is {http://example.com/gesmes}Envelope, expected Envelope in namespace \
         http://www.gesmes.org/xml/2002-08-01"
    );

    let html = "<html><body>maintenance</body></html>";
    assert!(matches!(ecb_err(html), FeedError::WrongRoot { .. }));

    // the cubes without the eurofxref namespace
    let no_default = DAILY.replace(r#" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref""#, "");
    let e = ecb_err(&no_default);
    assert!(matches!(&e, FeedError::Unexpected { element, .. } if element == "Cube (in no namespace)"), "{e:?}");

    // an undeclared prefix
    let undeclared = daily_with("<Cube currency='USD' rate='1.0823'/>", "<fx:Cube currency='USD' rate='1.0823'/>");
    let e = ecb_err(&undeclared);
    assert!(matches!(&e, FeedError::Unexpected { element, .. } if element.contains("undeclared prefix")), "{e:?}");

    // a second root element
    let two_roots = format!("{DAILY}<gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\"/>");
    assert!(matches!(ecb_err(&two_roots), FeedError::Unexpected { .. }));
}

#[test]
fn elements_out_of_place_are_refused() {
    let nested =
        daily_with("<Cube currency='USD' rate='1.0823'/>", "<Cube currency='USD' rate='1.0823'><Cube/></Cube>");
    assert!(matches!(ecb_err(&nested), FeedError::Unexpected { .. }));
    let foreign = daily_with("<Cube currency='USD' rate='1.0823'/>", "<Rate currency='USD' rate='1.0823'/>");
    let e = ecb_err(&foreign);
    assert!(
        e.to_string()
            .starts_with("unexpected element {http://www.ecb.int/vocabulary/2002-08-01/eurofxref}Rate at byte ")
    );
    let other_ns = daily_with("<gesmes:subject>", "<x:note xmlns:x='urn:x'/><gesmes:subject>");
    assert!(matches!(ecb_err(&other_ns), FeedError::Unexpected { .. }));
}

#[test]
fn missing_attributes_name_the_day_and_currency() {
    let e = ecb_err(&daily_with("<Cube time='2026-01-05'>", "<Cube>"));
    assert!(matches!(&e, FeedError::MissingAttribute { attribute: "time", at: Location::Byte(_) }), "{e:?}");

    let e = ecb_err(&daily_with("<Cube currency='GBP' rate='0.8456'/>", "<Cube rate='0.8456'/>"));
    assert!(
        matches!(&e, FeedError::MissingAttribute { attribute: "currency", at: Location::Day(day) } if *day == d("2026-01-05"))
    );

    let e = ecb_err(&daily_with("<Cube currency='GBP' rate='0.8456'/>", "<Cube currency='GBP'/>"));
    assert_eq!(e.to_string(), "missing attribute 'rate' at day 2026-01-05, currency GBP");
}

#[test]
fn bad_dates_codes_and_rates_are_refused() {
    for time in ["2026-02-30", "05/01/2026", "2026-1-5", "", "2026-01-05T00:00:00"] {
        let e = ecb_err(&daily_with("time='2026-01-05'", &format!("time='{time}'")));
        assert!(matches!(&e, FeedError::InvalidDate { value, .. } if value == time), "{e:?}");
    }
    for code in ["usd", "US", "USDX", ""] {
        let e = ecb_err(&daily_with("currency='USD'", &format!("currency='{code}'")));
        assert!(matches!(&e, FeedError::InvalidCurrency { value, .. } if value == code), "{e:?}");
    }
    for text in ["abc", "1,0823", "1e3", "+1.0823", " 1.0823", "1.0823 ", ".5", "5.", "1.0.8", "", "1_082"] {
        let e = ecb_err(&daily_with("rate='1.0823'", &format!("rate='{text}'")));
        assert!(
            matches!(&e, FeedError::InvalidRate { value, at } if value == text && *at == quote("2026-01-05", "USD")),
            "{e:?}"
        );
    }
    // more digits than a Decimal holds is refused with the limit, not rounded
    let e = ecb_err(&daily_with("rate='1.0823'", "rate='1.00000000000000000000000000001'"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "1.00000000000000000000000000001" has 29 decimal places; at most 10 are allowed"#
    );
}

#[test]
fn rates_out_of_bounds_are_refused_with_the_limit() {
    // Quotes per 1 EUR: at most 12 integer digits and 10 decimal places.
    let e = ecb_err(&daily_with("rate='1.0823'", "rate='79228162514264337593543950335'"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "79228162514264337593543950335" has 29 integer digits; at most 12 are allowed"#
    );
    let e = ecb_err(&daily_with("rate='1.0823'", "rate='1234567890.1234567890123456789'"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "1234567890.1234567890123456789" has 19 decimal places; at most 10 are allowed"#
    );
    // INR per unit derived from quotes: at most 4 integer digits. 89.5 / 0.00001 = 8 950 000.
    let e = ecb_err(&daily_with("rate='1.0823'", "rate='0.00001'"));
    assert_eq!(
        e.to_string(),
        r#"inr per unit derived at day 2026-01-05, currency USD: "8950000" has 7 integer digits; at most 4 are allowed"#
    );
    assert!(matches!(e, FeedError::DerivedOutOfBounds { at, .. } if at == quote("2026-01-05", "USD")));

    // INR per unit given as such: at most 4 integer digits and 6 decimal places.
    let inr = |rate: &str| {
        format!(
            r#"{{"base": "INR", "rates": [{{"date": "2026-01-05", "currency": "USD", "inr_per_unit": "{rate}"}}]}}"#
        )
    };
    let e = json_err(&inr("79228162514264337593543950335"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "79228162514264337593543950335" has 29 integer digits; at most 4 are allowed"#
    );
    let e = json_err(&inr("1234567890.1234567890123456789"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "1234567890.1234567890123456789" has 10 integer digits; at most 4 are allowed"#
    );
    let e = json_err(&inr("0.00000000000000000000000000001"));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "0.00000000000000000000000000001" has 29 decimal places; at most 6 are allowed"#
    );
    assert!(matches!(json_err(&inr("10000")), FeedError::RateOutOfBounds { .. }));
    assert_eq!(json(&inr("9999.999999")).unwrap().rates[0].inr_per_unit, dec!(9999.999999));
}

#[test]
fn a_feed_may_not_call_itself_manual() {
    let e = parse_ecb_xml(DAILY.as_bytes(), "MANUAL").unwrap_err();
    assert!(matches!(e, FeedError::ReservedSource), "{e:?}");
    assert_eq!(e.to_string(), r#"a feed's source may not be "MANUAL": it marks rates put by hand"#);
    let body = r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.5"}}"#;
    assert!(matches!(parse_json(body.as_bytes(), "MANUAL"), Err(FeedError::ReservedSource)));
}

#[test]
fn non_positive_rates_are_refused() {
    for (from, to, currency) in [
        ("rate='1.0823'", "rate='0'", "USD"),
        ("rate='1.0823'", "rate='0.0000'", "USD"),
        ("rate='0.8456'", "rate='-0.8456'", "GBP"),
        ("rate='89.5'", "rate='0'", "INR"),
    ] {
        let e = ecb_err(&daily_with(from, to));
        assert!(matches!(&e, FeedError::NotPositive { at, .. } if *at == quote("2026-01-05", currency)), "{e:?}");
    }
    let e = ecb_err(&daily_with("rate='0.8456'", "rate='-0.8456'"));
    assert_eq!(e.to_string(), "rate -0.8456 at day 2026-01-05, currency GBP is not positive");
}

#[test]
fn repeats_eur_and_empty_feeds_are_refused() {
    let twice = daily_with("<Cube currency='AED' rate='3.9745'/>", "<Cube currency='USD' rate='1.09'/>");
    assert!(matches!(ecb_err(&twice), FeedError::Duplicate { at } if at == quote("2026-01-05", "USD")));

    let day_twice = HIST.replace("2026-01-02", "2026-01-06");
    assert!(matches!(ecb_err(&day_twice), FeedError::Duplicate { at: Location::Day(day) } if day == d("2026-01-06")));

    let eur = daily_with("<Cube currency='AED' rate='3.9745'/>", "<Cube currency='EUR' rate='1'/>");
    assert!(matches!(ecb_err(&eur), FeedError::BaseListed { currency: Currency::EUR, .. }));

    let start = DAILY.find("<Cube>").unwrap();
    let end = DAILY.rfind("</Cube>").unwrap() + "</Cube>".len();
    let no_days = format!("{}<Cube/>{}", &DAILY[..start], &DAILY[end..]);
    assert!(matches!(ecb_err(&no_days), FeedError::NoRates));
    let no_cube = format!("{}{}", &DAILY[..start], &DAILY[end..]);
    assert!(matches!(ecb_err(&no_cube), FeedError::NoRates));
}

#[test]
fn json_in_inr_per_unit() {
    let body = r#"{"base": "INR", "rates": [
        {"date": "2026-01-06", "currency": "USD", "inr_per_unit": "83.52493"},
        {"date": "2026-01-05", "currency": "USD", "inr_per_unit": "83.123456"},
        {"date": "2026-01-05", "currency": "XAU", "inr_per_unit": "250000"},
        {"date": "2026-01-05", "currency": "JPY", "inr_per_unit": "0.55"}
    ]}"#;
    let rates = parse_json(body.as_bytes(), "BANK").unwrap();
    let bank = |date: &str, currency, r| FxRate { source: "BANK".to_owned(), ..rate(date, currency, r) };
    assert_eq!(
        rates,
        vec![
            bank("2026-01-05", Currency::JPY, dec!(0.55)),
            bank("2026-01-05", Currency::USD, dec!(83.123456)),
            bank("2026-01-06", Currency::USD, dec!(83.52493)),
        ]
    );
}

#[test]
fn json_in_euro_quotes_is_derived_like_the_ecb() {
    let body = r#"{"base": "EUR", "date": "2026-01-05",
        "rates": {"USD": "1.0823", "JPY": "162.50", "GBP": "0.8456", "INR": "89.5", "AED": "3.9745"}}"#;
    assert_eq!(parse_json(body.as_bytes(), "ECB").unwrap(), daily_rates());

    // 89.3 / 64 = 1.3953125 exactly: half away from zero gives 1.395313 (banker's would give 1.395312)
    let midpoint = r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.3", "USD": "64"}}"#;
    let rates = parse_json(midpoint.as_bytes(), "ECB").unwrap();
    assert_eq!(rates[1], rate("2026-01-05", Currency::USD, dec!(1.395313)));

    let no_inr = r#"{"base": "EUR", "date": "2026-01-05", "rates": {"USD": "1.0823"}}"#;
    let parsed = json(no_inr).unwrap();
    assert_eq!((parsed.rates.len(), parsed.days_without_inr), (0, vec![d("2026-01-05")]));
}

#[test]
fn json_numbers_are_refused_as_rates() {
    for body in [
        r#"{"base": "INR", "rates": [{"date": "2026-01-05", "currency": "USD", "inr_per_unit": 83.12}]}"#,
        r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": 89.5, "USD": "1.0823"}}"#,
        r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.5", "USD": 1}}"#,
    ] {
        let e = json_err(body);
        assert!(matches!(e, FeedError::Json { .. }), "{e:?}");
        assert!(chain(&e).contains("expected a rate as a decimal string"), "{}", chain(&e));
    }
}

#[test]
fn json_of_the_wrong_shape_is_refused() {
    for body in [
        "not json",
        r#"{"rates": []}"#,
        r#"{"base": "USD", "rates": []}"#,
        r#"{"base": "INR", "rates": [{"date": "2026-01-05", "currency": "USD", "inr_per_units": "83.1"}]}"#,
        r#"{"base": "INR", "rates": [{"date": "2026-01-05", "currency": "USD", "inr_per_unit": "83.1", "note": 1}]}"#,
        r#"{"base": "INR", "rates": {"USD": "83.1"}}"#,
        r#"{"base": "EUR", "rates": {"INR": "89.5"}}"#,
        r#"{"base": "EUR", "date": "2026-01-05", "rates": {"INR": "89.5"}, "source": "ECB"}"#,
        r#"{"base": "EUR", "date": "2026-01-05", "rates": [["INR", "89.5"]]}"#,
    ] {
        let e = json_err(body);
        assert!(matches!(e, FeedError::Json { .. }), "{e:?} for {body}");
        assert!(e.to_string() == "malformed json feed");
    }
}

#[test]
fn json_values_are_checked_like_the_ecb_s() {
    let row = |date: &str, currency: &str, rate: &str| {
        format!(r#"{{"date": "{date}", "currency": "{currency}", "inr_per_unit": "{rate}"}}"#)
    };
    let inr = |rows: &[String]| format!(r#"{{"base": "INR", "rates": [{}]}}"#, rows.join(","));

    let e = json_err(&inr(&[row("2026-01-05", "USD", "83.1"), row("2026-13-01", "USD", "83.1")]));
    assert_eq!(e.to_string(), "invalid date '2026-13-01' at row 1, expected YYYY-MM-DD");
    let e = json_err(&inr(&[row("2026-01-05", "usd", "83.1")]));
    assert!(matches!(e, FeedError::InvalidCurrency { .. }));
    let e = json_err(&inr(&[row("2026-01-05", "USD", "83.1"), row("2026-01-05", "USD", "83.2")]));
    assert!(matches!(e, FeedError::Duplicate { at } if at == quote("2026-01-05", "USD")));
    let e = json_err(&inr(&[row("2026-01-05", "INR", "1")]));
    assert!(matches!(e, FeedError::BaseListed { currency: Currency::INR, .. }));
    let e = json_err(&inr(&[row("2026-01-05", "USD", "-83.1")]));
    assert!(matches!(e, FeedError::NotPositive { .. }));
    let e = json_err(&inr(&[row("2026-01-05", "USD", "83,1")]));
    assert!(matches!(e, FeedError::InvalidRate { .. }));
    let e = json_err(&inr(&[row("2026-01-05", "USD", "83.1234567")]));
    assert_eq!(
        e.to_string(),
        r#"rate at day 2026-01-05, currency USD: "83.1234567" has 7 decimal places; at most 6 are allowed"#
    );
    assert!(matches!(json_err(&inr(&[])), FeedError::NoRates));

    let eur = |date: &str, rates: &str| format!(r#"{{"base": "EUR", "date": "{date}", "rates": {{{rates}}}}}"#);
    let e = json_err(&eur("05.01.2026", r#""INR": "89.5""#));
    assert_eq!(e.to_string(), "invalid date '05.01.2026' at field 'date', expected YYYY-MM-DD");
    let e = json_err(&eur("2026-01-05", r#""INR": "89.5", "USD": "1.08", "USD": "1.09""#));
    assert!(matches!(e, FeedError::Duplicate { at } if at == quote("2026-01-05", "USD")));
    let e = json_err(&eur("2026-01-05", r#""INR": "89.5", "EUR": "1""#));
    assert!(matches!(e, FeedError::BaseListed { currency: Currency::EUR, .. }));
    let e = json_err(&eur("2026-01-05", r#""INR": "89.5", "USD": "0""#));
    assert!(matches!(e, FeedError::NotPositive { at, .. } if at == quote("2026-01-05", "USD")));
    assert!(matches!(json_err(&eur("2026-01-05", "")), FeedError::NoRates));
}

#[test]
fn feed_format_names() {
    assert_eq!("ecb-xml".parse(), Ok(FeedFormat::EcbXml));
    assert_eq!("json".parse(), Ok(FeedFormat::Json));
    assert_eq!(FeedFormat::EcbXml.to_string(), "ecb-xml");
    assert!("xml".parse::<FeedFormat>().is_err());
}

#[test]
fn retryable_errors() {
    let url: Url = "http://127.0.0.1:9/fx".parse().unwrap();
    let status = |code: u16| FeedError::Status { url: url.clone(), status: StatusCode::from_u16(code).unwrap() };
    assert!(status(503).is_retryable());
    assert!(status(429).is_retryable());
    assert!(!status(404).is_retryable());
    assert!(FeedError::Timeout { url: url.clone(), after: Duration::from_secs(1) }.is_retryable());
    assert!(!FeedError::NoRates.is_retryable());
}
