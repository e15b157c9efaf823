//! Issue 13, item 1: an upstream that answers with a redirect. Both
//! programs follow one only to the mapping's (mirror's) own upstream, its
//! aliases or its `redirect_hosts`, same scheme, at most five hops, never
//! sending a `Referer`; what a followed redirect brings is verified like
//! anything else. The "other host" is a second in-process upstream on
//! another port of 127.0.0.1, whose request log shows it was never asked.

mod cacher;
mod mirror;
