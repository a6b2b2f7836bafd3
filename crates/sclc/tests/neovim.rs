//! The Neovim set-up of `docs/editors.md`, run headless in the Neovim Debian 12 ships (0.7.2),
//! as a user would: the test copies the page's snippets (the language-server one for 0.7 to
//! 0.10, the shell commands that build the tree-sitter parser, the tree-sitter one), not a
//! version of its own, into a fresh `$HOME`, and checks in the editor that
//!
//! - `.scl` files get the `scl` file type and `//` comments;
//! - the snippet starts this build's `sclc lsp`, which publishes the diagnostics of a file
//!   with errors (their codes and lines), and hover on `hist::record` shows the stdlib's
//!   comment above that function;
//! - the parser and all four queries load, the highlighter is on, and an example parses with
//!   no error node.
//!
//! `neovim` is one of `.ci/run`'s packages. Without `nvim` the test prints one `SKIPPED:` line
//! on a developer's machine and fails in CI (`CI` set).

mod common;
use common::repo_root;

use std::path::Path;
use std::process::Command;

/// The fenced block of `lang` in `docs/editors.md` whose first line is `first`.
fn doc_block(lang: &str, first: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/editors.md")).expect("docs/editors.md");
    let fence = format!("```{lang}\n");
    doc.split(&fence)
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("a closed block")])
        .find(|block| block.lines().next().is_some_and(|l| l.trim() == first))
        .unwrap_or_else(|| panic!("docs/editors.md has no ```{lang} block starting `{first}`"))
        .to_string()
}

/// The check, run inside Neovim once the file with errors is open: prints `key=value` lines.
const CHECK: &str = r#"
local out = {}
local function say(k, v) table.insert(out, k .. "=" .. tostring(v)) end
local bad = vim.api.nvim_get_current_buf()
say("bad.filetype", vim.bo[bad].filetype)
say("bad.commentstring", vim.bo[bad].commentstring)
say("diagnostics.arrived", vim.wait(60000, function() return #vim.diagnostic.get(bad) > 0 end, 50))
for _, d in ipairs(vim.diagnostic.get(bad)) do say("diagnostic", d.lnum + 1 .. " " .. tostring(d.code)) end

vim.cmd("edit " .. vim.fn.fnameescape(EXAMPLE))
local buf = vim.api.nvim_get_current_buf()
say("example.filetype", vim.bo[buf].filetype)
say("highlighter", vim.treesitter.highlighter.active[buf] ~= nil)
local get_query = (vim.treesitter.query and vim.treesitter.query.get) or vim.treesitter.get_query
for _, name in ipairs({ "highlights", "folds", "indents", "locals" }) do
  local ok, q = pcall(get_query, "scl", name)
  say("query." .. name, ok and q ~= nil)
end
say("tree.error", vim.treesitter.get_parser(buf, "scl"):parse()[1]:root():has_error())

local pos = vim.fn.searchpos("hist::record", "nw")
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = pos[1] - 1, character = pos[2] - 1 + #"hist::" },
}
local replies = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 30000) or {}
for _, reply in pairs(replies) do
  local c = reply.result and reply.result.contents
  local text = type(c) == "table" and (c.value or vim.inspect(c)) or tostring(c)
  say("hover", (text:gsub("\n", "\\n")))
end
io.stdout:write(table.concat(out, "\n") .. "\n")
vim.cmd("qa!")
"#;

#[test]
fn the_documented_neovim_set_up_works_in_debians_neovim() {
    let Ok(version) = Command::new("nvim").arg("--version").output() else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("nvim is missing in CI: `neovim` is one of .ci/run's packages");
        }
        eprintln!("SKIPPED: the_documented_neovim_set_up_works_in_debians_neovim: nvim is not installed (`apt-get install neovim`)");
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or("").to_string();
    eprintln!("checking docs/editors.md's Neovim set-up in {version}");

    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("neovim-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let clean_env = |cmd: &mut Command| {
        cmd.env("HOME", &home);
        for var in ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS", "VIMINIT", "MYVIMRC", "NVIM_APPNAME"] {
            cmd.env_remove(var);
        }
    };

    // The page's shell commands build the parser and link the queries, from the checkout.
    let build = doc_block("sh", "cd editors/tree-sitter-scl");
    let mut sh = Command::new("sh");
    sh.args(["-ec", &build]).current_dir(repo_root());
    clean_env(&mut sh);
    let out = sh.output().expect("sh runs");
    assert!(out.status.success(), "the documented parser build failed:\n{}", String::from_utf8_lossy(&out.stderr));

    // init.lua: the page's two snippets for Neovim 0.7, as a user would paste them.
    let init = format!(
        "{}\n{}",
        doc_block("lua", "-- sclc for Neovim 0.7 to 0.10"),
        doc_block("lua", "-- tree-sitter for SCL, Neovim 0.7 or later")
    );
    let config = home.join(".config/nvim");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("init.lua"), init).unwrap();

    // A policy with two errors: an unknown lock kind (line 1) and a missing expression (line 3).
    let bad = home.join("bad.scl");
    std::fs::write(&bad, "policy p for spinlok {\n    on acquired(l: lock) {\n        let x: u32 = ;\n    }\n}\n").unwrap();
    let example = repo_root().join("examples/contention_profiler.scl");
    let check = home.join("check.lua");
    std::fs::write(&check, format!("local EXAMPLE = {:?}\n{CHECK}", example.display().to_string())).unwrap();

    // `sclc` on PATH is this build's.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sclc")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()))).unwrap();
    let mut nvim = Command::new("timeout");
    nvim.args(["120", "nvim", "--headless", "-c"])
        .arg(format!("luafile {}", check.display()))
        .arg(&bad)
        .current_dir(&home)
        .env("PATH", path);
    clean_env(&mut nvim);
    let out = nvim.output().expect("nvim runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let report = format!("{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "nvim failed:\n{report}");
    let values = |key: &str| -> Vec<String> {
        stdout.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).map(|v| v.trim_end_matches('\r').to_string()).collect()
    };
    let one = |key: &str| values(key).into_iter().next().unwrap_or_else(|| panic!("no {key} in:\n{report}"));

    assert_eq!(one("bad.filetype"), "scl", "{report}");
    assert_eq!(one("bad.commentstring"), "// %s", "{report}");
    assert_eq!(one("diagnostics.arrived"), "true", "sclc lsp published no diagnostics:\n{report}");
    let diagnostics = values("diagnostic");
    assert!(diagnostics.contains(&"1 E0109".to_string()), "{report}");
    assert!(diagnostics.contains(&"3 E0101".to_string()), "{report}");

    assert_eq!(one("example.filetype"), "scl", "{report}");
    assert_eq!(one("highlighter"), "true", "{report}");
    for query in ["highlights", "folds", "indents", "locals"] {
        assert_eq!(one(&format!("query.{query}")), "true", "queries/{query}.scm does not load:\n{report}");
    }
    assert_eq!(one("tree.error"), "false", "{report}");

    // Hover on a stdlib function shows the comment above it in stdlib/hist.scl.
    let hist = std::fs::read_to_string(repo_root().join("stdlib/hist.scl")).unwrap();
    let lines: Vec<&str> = hist.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("fn record(")).expect("hist::record");
    let doc = lines[at - 1].trim_start_matches("//").trim();
    assert!(!doc.is_empty());
    let hover = one("hover");
    assert!(hover.contains("fn hist::record(") && hover.contains(doc), "hover on hist::record does not show `{doc}`:\n{report}");
}
