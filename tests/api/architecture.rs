//! The house stays acyclic: no file of `src/` (nor of the emulator's) imports, directly or through
//! others, a file that imports it. Imports are read from `use` trees and from every `crate::`, `super::`
//! and `self::` path, macro bodies included; test code is left out. A path resolves to the deepest module
//! file that exists (`a/b/c.rs`, else `a/b.rs`, else `a.rs`); a parent declaring its children (`mod x;`,
//! then `x::f`) is not an import.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// Where cycles would be allowed: nowhere. (SeaORM's convention declares each relation on both sides;
/// Chronos's entities declare only the side holding the foreign key, so they need no exception.)
const ALLOWED_CYCLES_UNDER: &[&str] = &[];

#[test]
fn chronos_has_no_import_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cycles = import_cycles(&root.join("src"), root);
    assert!(cycles.is_empty(), "import cycles in src/: {cycles:#?}");
}

#[test]
fn the_emulator_has_no_import_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cycles = import_cycles(&root.join("google-emulator/src"), root);
    assert!(
        cycles.is_empty(),
        "import cycles in google-emulator/src/: {cycles:#?}"
    );
}

/// The check itself finds cycles through `use` trees, `super::`, expressions and macro bodies, and not
/// through test modules.
#[test]
fn the_check_finds_cycles_through_every_kind_of_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let write = |path: &str, text: &str| {
        let file = src.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    };
    write("lib.rs", "mod a; mod b; mod c; mod d;");
    // a -> b by a use tree, b -> a through an expression inside a macro
    write("a.rs", "use crate::{b::{self, f}};\npub fn g() {}");
    write("b.rs", "pub fn f() { tokio::select! { _ = x => crate::a::g() } }");
    // c -> d/e.rs through `super::`, d/e.rs -> c by a plain path; d.rs declares e
    write("c.rs", "pub fn h() { crate::d::e::k() }");
    write("d.rs", "pub mod e;\npub(crate) fn m() {}");
    // test modules and visibilities do not count
    write("f.rs", "#[cfg(test)] mod tests { use crate::a::g; }");
    write("d/e.rs", "pub(super) fn k() { super::super::c::h() }");

    let cycles = import_cycles(&src, dir.path());
    assert_eq!(
        cycles,
        vec![
            vec!["src/a.rs".to_string(), "src/b.rs".to_string()],
            vec!["src/c.rs".to_string(), "src/d/e.rs".to_string()],
        ]
    );
}

/// Each cycle (a strongly connected set of more than one file) as paths relative to `root`, sorted;
/// allowed ones left out.
fn import_cycles(src: &Path, root: &Path) -> Vec<Vec<String>> {
    let files = module_files(src);
    let edges: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = files
        .iter()
        .map(|(module, file)| {
            let targets = imported_paths(file, module)
                .into_iter()
                .filter_map(|path| resolve(&files, &path))
                .filter(|target| *target != file)
                .collect();
            (file, targets)
        })
        .collect();
    let reachable: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = edges
        .keys()
        .map(|file| (*file, reachable_from(&edges, file)))
        .collect();
    let relative = |file: &PathBuf| {
        file.strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut cycles = BTreeSet::new();
    for (file, reached) in &reachable {
        let mut component: Vec<String> = reached
            .iter()
            .filter(|other| reachable[*other].contains(file))
            .map(|other| relative(other))
            .collect();
        if component.is_empty() {
            continue;
        }
        component.push(relative(file));
        component.sort();
        component.dedup();
        let allowed = ALLOWED_CYCLES_UNDER
            .iter()
            .any(|dir| component.iter().all(|file| file.starts_with(&format!("{dir}/"))));
        if component.len() > 1 && !allowed {
            cycles.insert(component);
        }
    }
    cycles.into_iter().collect()
}

/// Every non-test `.rs` file under `src`, by module path (`lib.rs` is the crate root).
fn module_files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut files = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if name != "tests" {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                let relative = path.strip_prefix(src).expect("under src").with_extension("");
                let mut module: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if module == ["lib"] || module == ["main"] {
                    module.clear();
                } else if module.last().is_some_and(|last| last == "mod") {
                    module.pop();
                }
                files.insert(module, path);
            }
        }
    }
    files
}

fn reachable_from<'a>(
    edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
    start: &'a PathBuf,
) -> BTreeSet<&'a PathBuf> {
    let mut seen = BTreeSet::new();
    let mut pending: Vec<&PathBuf> = edges[start].iter().copied().collect();
    while let Some(file) = pending.pop() {
        if seen.insert(file) {
            pending.extend(edges.get(file).into_iter().flatten().copied());
        }
    }
    seen
}

/// The deepest existing module file on `path`.
fn resolve<'a>(files: &'a BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<&'a PathBuf> {
    (1..=path.len()).rev().find_map(|len| files.get(&path[..len]))
}

/// Every crate-absolute module path the file names, from its `use` trees and `crate::`/`super::`/`self::`
/// paths.
fn imported_paths(file: &Path, module: &[String]) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).expect("read source file");
    let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut collector = PathCollector {
        module: module.to_vec(),
        paths: Vec::new(),
    };
    collector.visit_file(&syntax);
    collector.paths
}

struct PathCollector {
    module: Vec<String>,
    paths: Vec<Vec<String>>,
}

impl PathCollector {
    /// `crate::a::b`, `super::a` or `self::a` as a path from the crate root; other paths name other crates.
    fn add(&mut self, segments: Vec<String>) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "super" | "self" => {
                let mut base = self.module.clone();
                let mut rest = segments.as_slice();
                while let Some(head) = rest.first().filter(|s| *s == "super" || *s == "self") {
                    if head == "super" {
                        base.pop();
                    }
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            _ => return,
        };
        self.paths.push(absolute);
    }

    fn add_use_tree(&mut self, prefix: Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                let mut prefix = prefix;
                prefix.push(path.ident.to_string());
                self.add_use_tree(prefix, &path.tree);
            }
            syn::UseTree::Name(name) => self.add(with(prefix, &name.ident)),
            syn::UseTree::Rename(rename) => self.add(with(prefix, &rename.ident)),
            syn::UseTree::Glob(_) => self.add(prefix),
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.add_use_tree(prefix.clone(), item);
                }
            }
        }
    }

    /// Macro bodies are not parsed: any `crate`/`super`/`self` followed by `::ident` runs is a path.
    fn add_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut index = 0;
        while index < tokens.len() {
            match &tokens[index] {
                TokenTree::Group(group) => self.add_tokens(group.stream()),
                TokenTree::Ident(ident)
                    if ["crate", "super", "self"].contains(&ident.to_string().as_str()) =>
                {
                    let mut segments = vec![ident.to_string()];
                    let mut next = index + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(name)),
                    ) = (tokens.get(next), tokens.get(next + 1), tokens.get(next + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(name.to_string());
                        next += 3;
                    }
                    if segments.len() > 1 {
                        self.add(segments);
                    }
                    index = next - 1;
                }
                _ => {}
            }
            index += 1;
        }
    }
}

fn with(mut prefix: Vec<String>, ident: &syn::Ident) -> Vec<String> {
    if ident != "self" {
        prefix.push(ident.to_string());
    }
    prefix
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test_only(&item.attrs) {
            visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test_only(&item.attrs) {
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if !is_test_only(&item.attrs) {
            self.add_use_tree(Vec::new(), &item.tree);
        }
    }

    /// `pub(super)` and `pub(in crate::x)` say who may see an item, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.add(path.segments.iter().map(|s| s.ident.to_string()).collect());
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.add_tokens(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}
