//! Template rendering and the text clean-up shared by all message builders.

use std::sync::LazyLock;
use std::time::Duration;

use tera::{Context, Tera};

use crate::MailError;

/// Accent colour used when a studio has none or an invalid one.
pub(crate) const DEFAULT_ACCENT_COLOUR: &str = "#27272a";

/// Templates compiled into the binary. Names ending in `.html` are
/// autoescaped, and `.txt` names are rendered as they are.
const TEMPLATES: [(&str, &str); 13] = [
    ("base.html", include_str!("../templates/base.html")),
    (
        "portal_link.txt",
        include_str!("../templates/portal_link.txt"),
    ),
    (
        "portal_link.html",
        include_str!("../templates/portal_link.html"),
    ),
    (
        "invoice_overdue_client.txt",
        include_str!("../templates/invoice_overdue_client.txt"),
    ),
    (
        "invoice_overdue_client.html",
        include_str!("../templates/invoice_overdue_client.html"),
    ),
    (
        "invoice_overdue_studio.txt",
        include_str!("../templates/invoice_overdue_studio.txt"),
    ),
    (
        "invoice_overdue_studio.html",
        include_str!("../templates/invoice_overdue_studio.html"),
    ),
    (
        "payment_receipt.txt",
        include_str!("../templates/payment_receipt.txt"),
    ),
    (
        "payment_receipt.html",
        include_str!("../templates/payment_receipt.html"),
    ),
    (
        "plan_payment_failed.txt",
        include_str!("../templates/plan_payment_failed.txt"),
    ),
    (
        "plan_payment_failed.html",
        include_str!("../templates/plan_payment_failed.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../templates/password_reset.html"),
    ),
];

static TERA: LazyLock<Tera> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.set_escape_fn(escape_html);
    // The templates are fixed at compile time and every one is rendered by
    // the crate's tests, so a parse error here is a build defect.
    tera.add_raw_templates(TEMPLATES)
        .expect("embedded mail templates must parse");
    tera
});

/// Plain-text and HTML bodies of one message.
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) html: String,
}

/// Renders `<name>.txt` and `<name>.html` with the same context.
pub(crate) fn render_pair(name: &'static str, context: &Context) -> Result<Rendered, MailError> {
    let text = render_one(name, "txt", context)?;
    let html = render_one(name, "html", context)?;
    Ok(Rendered { text, html })
}

fn render_one(name: &'static str, extension: &str, context: &Context) -> Result<String, MailError> {
    TERA.render(&format!("{name}.{extension}"), context)
        .map_err(|error| MailError::Template {
            template: name,
            detail: error_chain(&error),
        })
}

/// Joins an error and its sources, because Tera's top-level message only
/// names the template.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Escapes text for HTML element content and quoted attribute values.
///
/// Unlike Tera's default it leaves `/` alone, so URLs stay readable in the
/// HTML source and match the plain-text part.
fn escape_html(input: &str) -> String {
    let mut output = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '"' => output.push_str("&quot;"),
            '\'' => output.push_str("&#x27;"),
            _ => output.push(c),
        }
    }
    output
}

/// Replaces control characters (including CR, LF and tab) with spaces and
/// trims, for values that appear in headers or on one line.
pub(crate) fn single_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Shortens `value` to at most `max_chars` characters, the last of which is
/// "…" when anything was cut.
pub(crate) fn truncate_chars(value: &str, max_chars: usize) -> String {
    if value.chars().count() <= max_chars {
        return value.to_owned();
    }
    let mut truncated: String = value.chars().take(max_chars.saturating_sub(1)).collect();
    truncated.push('…');
    truncated
}

/// Normalises line endings to `\n` and drops control characters other than
/// newline and tab, for free text that keeps its line breaks.
pub(crate) fn multi_line(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Returns the studio's accent colour if it is `#rgb` or `#rrggbb`, and the
/// default colour otherwise. The value lands in inline CSS, so nothing else
/// is let through.
pub(crate) fn accent_colour(value: Option<&str>) -> String {
    match value.map(str::trim) {
        None | Some("") => DEFAULT_ACCENT_COLOUR.to_owned(),
        Some(colour) if parse_hex_colour(colour).is_some() => colour.to_ascii_lowercase(),
        Some(colour) => {
            tracing::warn!(
                accent_colour = colour,
                "ignoring invalid accent colour, expected #rgb or #rrggbb"
            );
            DEFAULT_ACCENT_COLOUR.to_owned()
        }
    }
}

/// Picks dark or white text for a button filled with `accent`, so that light
/// studio colours stay readable.
pub(crate) fn text_colour_on(accent: &str) -> &'static str {
    let Some([red, green, blue]) = parse_hex_colour(accent) else {
        return "#ffffff";
    };
    // Perceived brightness with the ITU-R BT.601 luma weights, 0 to 255.
    let luma = 0.299 * f64::from(red) + 0.587 * f64::from(green) + 0.114 * f64::from(blue);
    if luma > 160.0 { "#18181b" } else { "#ffffff" }
}

fn parse_hex_colour(colour: &str) -> Option<[u8; 3]> {
    let hex = colour.strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |digits: &str| u8::from_str_radix(digits, 16).ok();
    match hex.len() {
        3 => {
            let mut rgb = [0; 3];
            for (i, digit) in hex.chars().enumerate() {
                rgb[i] = channel(&format!("{digit}{digit}"))?;
            }
            Some(rgb)
        }
        6 => Some([
            channel(&hex[0..2])?,
            channel(&hex[2..4])?,
            channel(&hex[4..6])?,
        ]),
        _ => None,
    }
}

/// Writes a validity period in English words, such as "1 hour" or
/// "2 days and 30 minutes". Seconds are dropped, so the text never overstates
/// the period, and anything under a minute is "less than a minute".
pub(crate) fn duration_in_words(duration: Duration) -> String {
    let total_minutes = duration.as_secs() / 60;
    if total_minutes == 0 {
        return "less than a minute".to_owned();
    }
    let days = total_minutes / (24 * 60);
    let hours = total_minutes / 60 % 24;
    let minutes = total_minutes % 60;

    let parts: Vec<String> = [(days, "day"), (hours, "hour"), (minutes, "minute")]
        .into_iter()
        .filter(|&(count, _)| count > 0)
        .map(|(count, unit)| {
            if count == 1 {
                format!("1 {unit}")
            } else {
                format!("{count} {unit}s")
            }
        })
        .collect();

    match parts.as_slice() {
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => "less than a minute".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_templates_parse() {
        assert!(TERA.get_template_names().count() >= TEMPLATES.len());
    }

    #[test]
    fn escape_html_keeps_slashes() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a> https://x/y"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/a&gt; https://x/y"
        );
    }

    #[test]
    fn single_line_removes_line_breaks() {
        assert_eq!(
            single_line(" Wedding\r\nBcc: x@example.com "),
            "Wedding  Bcc: x@example.com"
        );
    }

    #[test]
    fn truncate_chars_counts_characters() {
        assert_eq!(truncate_chars("Jürgen", 6), "Jürgen");
        assert_eq!(truncate_chars("Jürgen", 3), "Jü…");
        assert_eq!(truncate_chars("井手 遥", 2), "井…");
        assert_eq!(truncate_chars("", 5), "");
    }

    #[test]
    fn multi_line_normalises_line_endings() {
        assert_eq!(multi_line("a\r\nb\rc\u{7}\td\n"), "a\nb\nc\td");
    }

    #[test]
    fn accent_colour_accepts_hex_only() {
        assert_eq!(accent_colour(Some("#A1B2C3")), "#a1b2c3");
        assert_eq!(accent_colour(Some("#abc")), "#abc");
        assert_eq!(accent_colour(None), DEFAULT_ACCENT_COLOUR);
        assert_eq!(accent_colour(Some("  ")), DEFAULT_ACCENT_COLOUR);
        assert_eq!(accent_colour(Some("red")), DEFAULT_ACCENT_COLOUR);
        assert_eq!(
            accent_colour(Some("#fff;background:url(x)")),
            DEFAULT_ACCENT_COLOUR
        );
        assert_eq!(accent_colour(Some("#ggg")), DEFAULT_ACCENT_COLOUR);
    }

    #[test]
    fn text_colour_contrasts_with_accent() {
        assert_eq!(text_colour_on("#ffffff"), "#18181b");
        assert_eq!(text_colour_on("#ff0"), "#18181b");
        assert_eq!(text_colour_on("#000000"), "#ffffff");
        assert_eq!(text_colour_on(DEFAULT_ACCENT_COLOUR), "#ffffff");
    }

    #[test]
    fn duration_in_words_cases() {
        let cases = [
            (Duration::from_secs(30), "less than a minute"),
            (Duration::from_secs(60), "1 minute"),
            (Duration::from_secs(30 * 60 + 59), "30 minutes"),
            (Duration::from_secs(3600), "1 hour"),
            (Duration::from_secs(90 * 60), "1 hour and 30 minutes"),
            (Duration::from_secs(2 * 86_400), "2 days"),
            (
                Duration::from_secs(86_400 + 2 * 3600 + 60),
                "1 day, 2 hours and 1 minute",
            ),
        ];
        for (duration, expected) in cases {
            assert_eq!(duration_in_words(duration), expected, "{duration:?}");
        }
    }
}
