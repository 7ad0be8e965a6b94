//! Times of day, time windows that may wrap midnight, and weekday sets.

use std::fmt;

/// Seconds since midnight, `0..=86400` (86400 is `24:00`, only valid as the
/// end of a window).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u32);

/// Why a time of day or a time window does not parse; each variant holds
/// the text as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    NotATime(String),
    Hour { hour: u32, text: String },
    MinuteOrSecond(String),
    NotAWindow(String),
    StartsAtEndOfDay(String),
    EmptyWindow(String),
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::NotATime(t) => {
                write!(
                    f,
                    "`{t}` is not a time of day; write `HH:MM` on a 24-hour clock"
                )
            }
            TimeError::Hour { hour, text } => write!(
                f,
                "hour `{hour:02}` is out of range in `{text}`; hours run from 00 to 23"
            ),
            TimeError::MinuteOrSecond(t) => {
                write!(f, "minutes and seconds run from 00 to 59 in `{t}`")
            }
            TimeError::NotAWindow(t) => write!(
                f,
                "`{t}` is not a time window; write `HH:MM-HH:MM`, e.g. `09:00-18:00`"
            ),
            TimeError::StartsAtEndOfDay(t) => {
                write!(f, "a window cannot start at `24:00` in `{t}`")
            }
            TimeError::EmptyWindow(t) => {
                write!(f, "the window `{t}` is empty: it starts where it ends")
            }
        }
    }
}

impl std::error::Error for TimeError {}

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(86_400);

    /// Parses `HH:MM` or `HH:MM:SS` (24-hour clock). `24:00` is accepted.
    ///
    /// # Errors
    /// What is wrong with the text (its `Display` is a lowercase sentence).
    pub fn parse(text: &str) -> Result<TimeOfDay, TimeError> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let nums: Vec<u32> = parts
            .iter()
            .map(|p| {
                if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse::<u32>().map_err(|_| ())
                } else {
                    Err(())
                }
            })
            .collect::<Result<_, _>>()
            .map_err(|()| TimeError::NotATime(text.to_owned()))?;
        let (h, m, s) = match nums.as_slice() {
            [h, m] => (*h, *m, 0),
            [h, m, s] => (*h, *m, *s),
            _ => return Err(TimeError::NotATime(text.to_owned())),
        };
        if h == 24 && m == 0 && s == 0 {
            return Ok(TimeOfDay::END_OF_DAY);
        }
        if h > 23 {
            return Err(TimeError::Hour {
                hour: h,
                text: text.to_owned(),
            });
        }
        if m > 59 || s > 59 {
            return Err(TimeError::MinuteOrSecond(text.to_owned()));
        }
        Ok(TimeOfDay(h * 3600 + m * 60 + s))
    }

    #[must_use]
    pub fn from_seconds(secs: u32) -> TimeOfDay {
        TimeOfDay(secs.min(86_400))
    }

    #[must_use]
    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, (self.0 / 60) % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

/// A half-open window `start..end` of the day; when `end < start` it wraps
/// midnight (`22:00-06:00` holds at 23:00 and at 05:59, not at 06:00).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl TimeWindow {
    /// Parses `HH:MM-HH:MM`.
    ///
    /// # Errors
    /// When either side is not a time or the window is empty.
    pub fn parse(text: &str) -> Result<TimeWindow, TimeError> {
        let Some((a, b)) = text.split_once('-') else {
            return Err(TimeError::NotAWindow(text.to_owned()));
        };
        let start = TimeOfDay::parse(a)?;
        let end = TimeOfDay::parse(b)?;
        if start == TimeOfDay::END_OF_DAY {
            return Err(TimeError::StartsAtEndOfDay(text.to_owned()));
        }
        if start == end {
            return Err(TimeError::EmptyWindow(text.to_owned()));
        }
        Ok(TimeWindow { start, end })
    }

    #[must_use]
    pub fn contains(&self, t: TimeOfDay) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// Accepts full English names and three-letter abbreviations, any case.
    #[must_use]
    pub fn parse(text: &str) -> Option<Weekday> {
        let t = text.trim().to_ascii_lowercase();
        Weekday::ALL
            .into_iter()
            .find(|d| d.name() == t || d.name().get(..3) == Some(t.as_str()))
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }

    /// Monday = 0 .. Sunday = 6.
    #[must_use]
    pub fn index(self) -> u8 {
        match self {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        }
    }
}

/// A set of weekdays as a bit mask (bit 0 = Monday).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.index();
    }

    #[must_use]
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.index()) != 0
    }

    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Weekday::ALL
            .into_iter()
            .filter(|d| self.contains(*d))
            .filter_map(|d| d.name().get(..3))
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TimeOfDay {
        TimeOfDay::parse(s).unwrap_or(TimeOfDay(999_999))
    }

    #[test]
    fn parses_and_rejects_times() {
        assert_eq!(t("09:30").seconds(), 9 * 3600 + 30 * 60);
        assert_eq!(t("24:00"), TimeOfDay::END_OF_DAY);
        assert!(TimeOfDay::parse("25:00").is_err());
        assert!(TimeOfDay::parse("9:00").is_err());
        assert!(TimeOfDay::parse("12:60").is_err());
        assert!(TimeOfDay::parse("noon").is_err());
    }

    #[test]
    fn windows_are_half_open_and_wrap_midnight() {
        let day = TimeWindow::parse("09:00-18:00").unwrap_or(TimeWindow {
            start: t("00:00"),
            end: t("00:01"),
        });
        assert!(day.contains(t("09:00")));
        assert!(day.contains(t("17:59")));
        assert!(!day.contains(t("18:00")));
        let night = TimeWindow::parse("22:00-06:00").unwrap_or(day);
        assert!(night.contains(t("23:00")));
        assert!(night.contains(t("00:00")));
        assert!(night.contains(t("05:59")));
        assert!(!night.contains(t("06:00")));
        assert!(!night.contains(t("12:00")));
        assert!(TimeWindow::parse("10:00-10:00").is_err());
        assert!(TimeWindow::parse("10:00").is_err());
    }

    #[test]
    fn weekdays() {
        assert_eq!(Weekday::parse("Mon"), Some(Weekday::Monday));
        assert_eq!(Weekday::parse("sunday"), Some(Weekday::Sunday));
        assert_eq!(Weekday::parse("funday"), None);
        let mut s = WeekdaySet::default();
        s.insert(Weekday::Friday);
        assert!(s.contains(Weekday::Friday) && !s.contains(Weekday::Monday));
        assert_eq!(s.to_string(), "fri");
    }
}
