//! Forwarding impls, so a trait object can be passed as `&T`, `Box<T>` or
//! `Arc<T>` wherever the trait is expected.

/// Implements an `async_trait` trait for `&T`, `Box<T>` and `Arc<T>` by
/// forwarding each listed method. The list must repeat the trait's methods; a
/// missing one is a compile error, so the two cannot drift.
/// Methods that are not async go in an optional `sync { ... }` list after the
/// async ones. Doc comments on the listed methods are accepted and dropped, so a
/// trait can be defined from the same list.
macro_rules! forward_async {
    ($tr:ident {
        $($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*
    } $(sync { $($(#[$sdoc:meta])* fn $sm:ident(&self $(, $sa:ident : $st:ty)*) -> $sr:ty;)* })?) => {
        $crate::forward::forward_async!(@impl $tr, &T,
            { $(fn $m(&self $(, $a: $t)*) -> $r;)* } { $($(fn $sm(&self $(, $sa: $st)*) -> $sr;)*)? });
        $crate::forward::forward_async!(@impl $tr, ::std::boxed::Box<T>,
            { $(fn $m(&self $(, $a: $t)*) -> $r;)* } { $($(fn $sm(&self $(, $sa: $st)*) -> $sr;)*)? });
        $crate::forward::forward_async!(@impl $tr, ::std::sync::Arc<T>,
            { $(fn $m(&self $(, $a: $t)*) -> $r;)* } { $($(fn $sm(&self $(, $sa: $st)*) -> $sr;)*)? });
    };
    (@impl $tr:ident, $ptr:ty,
        { $(fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)* }
        { $(fn $sm:ident(&self $(, $sa:ident : $st:ty)*) -> $sr:ty;)* }) => {
        #[::async_trait::async_trait]
        impl<T: $tr + ?Sized> $tr for $ptr {
            $(async fn $m(&self $(, $a: $t)*) -> $r { (**self).$m($($a),*).await })*
            $(fn $sm(&self $(, $sa: $st)*) -> $sr { (**self).$sm($($sa),*) })*
        }
    };
}

/// The same as [`forward_async`] for traits of plain (not async) methods.
macro_rules! forward_sync {
    ($tr:ident { $(fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)* }) => {
        impl<T: $tr + ?Sized> $tr for &T {
            $(fn $m(&self $(, $a: $t)*) -> $r { (**self).$m($($a),*) })*
        }
        impl<T: $tr + ?Sized> $tr for ::std::boxed::Box<T> {
            $(fn $m(&self $(, $a: $t)*) -> $r { (**self).$m($($a),*) })*
        }
        impl<T: $tr + ?Sized> $tr for ::std::sync::Arc<T> {
            $(fn $m(&self $(, $a: $t)*) -> $r { (**self).$m($($a),*) })*
        }
    };
}

pub(crate) use {forward_async, forward_sync};
