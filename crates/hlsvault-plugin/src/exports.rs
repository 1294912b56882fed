//! A plugin's hook functions: found by the names its version of the
//! contract gives them, type-checked once when an instance is made, and
//! called with the current version's types. Every version's hooks take the same
//! shapes but one: 0.2.0's `entry-tags` is also told the segment's markers,
//! which a 0.1.0 plugin is not.

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Func, Instance, Lift, Lower, TypedFunc,
};
use wasmtime::Store;

use crate::host::filter::exports::hlsvault::plugin::filter::Verdict;
use crate::host::signer::exports::hlsvault::plugin::signer::SignRequest;
use crate::host::{HostState, MarkerInfo, PlaylistKind, SegmentInfo, StreamInfo};
use crate::{export_name, Hook};

/// A plugin's hook functions, as `T`: where they are in its component
/// (found once, when it is loaded), or an instance's functions.
#[derive(Debug, Clone)]
pub(crate) struct Exports<T = ComponentExportIndex> {
    version: &'static str,
    filter: Option<T>,
    name: Option<T>,
    header_tags: Option<T>,
    entry_tags: Option<T>,
    sign: Option<T>,
}

impl Exports {
    /// The functions of `hooks` in `component`, built against `version`.
    pub fn find(
        component: &Component,
        version: &'static str,
        hooks: &[Hook],
    ) -> wasmtime::Result<Exports> {
        let mut found = Exports {
            version,
            filter: None,
            name: None,
            header_tags: None,
            entry_tags: None,
            sign: None,
        };
        for &hook in hooks {
            let interface = export_name(hook, version);
            let (_, at) = component
                .get_export(None, &interface)
                .ok_or_else(|| wasmtime::Error::msg(format!("no export {interface}")))?;
            let get = |function: &str| {
                let found = component.get_export(Some(&at), function);
                found.map(|(_, index)| index).ok_or_else(|| {
                    wasmtime::Error::msg(format!("{interface} exports no {function}"))
                })
            };
            match hook {
                Hook::PacketFilter => found.filter = Some(get("filter")?),
                Hook::SegmentNamer => found.name = Some(get("name")?),
                Hook::PlaylistPolicy => {
                    found.header_tags = Some(get("header-tags")?);
                    found.entry_tags = Some(get("entry-tags")?);
                }
                Hook::UrlSigner => found.sign = Some(get("sign")?),
            }
        }
        Ok(found)
    }

    /// The functions in `instance`, checked against the types the host
    /// calls them with: fails if one has another type than the contract's.
    pub fn bind(
        &self,
        instance: &Instance,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Exports<Func>> {
        let mut func = |index: &Option<ComponentExportIndex>| -> wasmtime::Result<Option<Func>> {
            let Some(index) = index else { return Ok(None) };
            let func = instance.get_func(&mut *store, index);
            func.map(Some)
                .ok_or_else(|| wasmtime::Error::msg("a hook's export is not a function"))
        };
        let bound = Exports {
            version: self.version,
            filter: func(&self.filter)?,
            name: func(&self.name)?,
            header_tags: func(&self.header_tags)?,
            entry_tags: func(&self.entry_tags)?,
            sign: func(&self.sign)?,
        };
        let check = Some(&*store);
        if let Some(f) = &bound.filter {
            filter(f, check)?;
        }
        if let Some(f) = &bound.name {
            name(f, check)?;
        }
        if let Some(f) = &bound.header_tags {
            header_tags(f, check)?;
        }
        if let Some(f) = &bound.entry_tags {
            match bound.version {
                "0.1.0" => entry_tags_0_1(f, check).map(drop)?,
                _ => entry_tags(f, check).map(drop)?,
            }
        }
        if let Some(f) = &bound.sign {
            sign(f, check)?;
        }
        Ok(bound)
    }
}

/// The function, or why there is none.
fn some(f: &Option<Func>) -> wasmtime::Result<&Func> {
    f.as_ref()
        .ok_or_else(|| wasmtime::Error::msg("the plugin does not implement this hook"))
}

impl Exports<Func> {
    /// `filter.filter`.
    pub fn filter(
        &self,
        store: &mut Store<HostState>,
        info: &StreamInfo,
        packets: &[u8],
    ) -> wasmtime::Result<Verdict> {
        let f = filter(some(&self.filter)?, None)?;
        Ok(f.call(store, (info, packets))?.0)
    }

    /// `namer.name`.
    pub fn name(
        &self,
        store: &mut Store<HostState>,
        segment: &SegmentInfo,
    ) -> wasmtime::Result<String> {
        let f = name(some(&self.name)?, None)?;
        Ok(f.call(store, (segment,))?.0)
    }

    /// `policy.header-tags`.
    pub fn header_tags(
        &self,
        store: &mut Store<HostState>,
        stream: &str,
        kind: PlaylistKind,
    ) -> wasmtime::Result<Vec<String>> {
        let f = header_tags(some(&self.header_tags)?, None)?;
        Ok(f.call(store, (stream, kind))?.0)
    }

    /// `policy.entry-tags`: a 0.1.0 plugin is not told the markers.
    pub fn entry_tags(
        &self,
        store: &mut Store<HostState>,
        segment: &SegmentInfo,
        markers: &[MarkerInfo],
        kind: PlaylistKind,
    ) -> wasmtime::Result<Vec<String>> {
        let func = some(&self.entry_tags)?;
        Ok(match self.version {
            "0.1.0" => entry_tags_0_1(func, None)?.call(store, (segment, kind))?.0,
            _ => {
                entry_tags(func, None)?
                    .call(store, (segment, markers, kind))?
                    .0
            }
        })
    }

    /// `signer.sign`.
    pub fn sign(
        &self,
        store: &mut Store<HostState>,
        request: &SignRequest,
    ) -> wasmtime::Result<String> {
        let f = sign(some(&self.sign)?, None)?;
        Ok(f.call(store, (request,))?.0)
    }
}

// The contract's function types, each written once: checked against the
// component when an instance is bound, and taken as checked at each call
// (as wasmtime's generated bindings do), so a call costs no type check.

/// A function taking `P` and returning `R`, or why it does not.
type Typed<P, R> = wasmtime::Result<TypedFunc<P, (R,)>>;

/// `f` as a function of `P` to `R`: checked against the component's types
/// with `check` (as an instance is bound), else taken as checked then.
fn typed<P, R>(f: &Func, check: Option<&Store<HostState>>) -> Typed<P, R>
where
    P: ComponentNamedList + Lower,
    (R,): ComponentNamedList + Lift,
{
    match check {
        Some(store) => f.typed(store),
        // SAFETY: `f` was bound by `Exports::bind`, which checked it with
        // the same `P` and `R`: each hook's types are written once, in its
        // function below, which both the check and the call go through.
        None => Ok(unsafe { TypedFunc::new_unchecked(*f) }),
    }
}

fn filter<'a>(
    f: &Func,
    check: Option<&Store<HostState>>,
) -> Typed<(&'a StreamInfo, &'a [u8]), Verdict> {
    typed(f, check)
}

fn name<'a>(f: &Func, check: Option<&Store<HostState>>) -> Typed<(&'a SegmentInfo,), String> {
    typed(f, check)
}

fn header_tags<'a>(
    f: &Func,
    check: Option<&Store<HostState>>,
) -> Typed<(&'a str, PlaylistKind), Vec<String>> {
    typed(f, check)
}

fn entry_tags<'a>(
    f: &Func,
    check: Option<&Store<HostState>>,
) -> Typed<(&'a SegmentInfo, &'a [MarkerInfo], PlaylistKind), Vec<String>> {
    typed(f, check)
}

fn entry_tags_0_1<'a>(
    f: &Func,
    check: Option<&Store<HostState>>,
) -> Typed<(&'a SegmentInfo, PlaylistKind), Vec<String>> {
    typed(f, check)
}

fn sign<'a>(f: &Func, check: Option<&Store<HostState>>) -> Typed<(&'a SignRequest,), String> {
    typed(f, check)
}
