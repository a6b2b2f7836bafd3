//! Clean-up passes on a function: removing blocks that no path reaches (the kernel
//! verifier refuses unreachable code), folding jumps to empty blocks, and dropping
//! instructions whose results nobody uses.

use crate::ir::*;
use std::collections::HashSet;

/// Removes the blocks no path from the entry reaches.
pub fn remove_unreachable(f: &mut Function) {
    let mut reached = HashSet::new();
    let mut stack = vec![f.entry()];
    while let Some(b) = stack.pop() {
        if reached.insert(b) {
            if let Some(t) = &f.blocks[b].term {
                stack.extend(t.successors());
            }
        }
    }
    f.layout.retain(|b| reached.contains(b));
}

/// Redirects jumps to blocks that only jump on (so layout can fall through), then removes
/// what became unreachable.
pub fn thread_jumps(f: &mut Function) {
    let forward = |f: &Function, mut b: Block| {
        let mut hops = 0;
        while let (true, Some(Terminator::Jump(next))) = (f.blocks[b].insts.is_empty(), &f.blocks[b].term) {
            if *next == b || hops > f.blocks.len() {
                break;
            }
            b = *next;
            hops += 1;
        }
        b
    };
    let blocks: Vec<Block> = f.layout.clone();
    for b in blocks {
        let term = f.blocks[b].term.clone();
        let new = match term {
            Some(Terminator::Jump(t)) => Some(Terminator::Jump(forward(f, t))),
            Some(Terminator::Branch { cond, then, else_ }) => {
                Some(Terminator::Branch { cond, then: forward(f, then), else_: forward(f, else_) })
            }
            other => other,
        };
        f.blocks[b].term = new;
    }
    remove_unreachable(f);
}

/// Drops instructions without side effects whose results are never used, repeatedly.
pub fn remove_dead_values(f: &mut Function) {
    loop {
        let mut used = HashSet::new();
        for &b in &f.layout {
            for &i in &f.blocks[b].insts {
                used.extend(f.insts[i].uses());
            }
            match &f.blocks[b].term {
                Some(Terminator::Branch { cond, .. }) => {
                    used.insert(*cond);
                }
                Some(Terminator::Return(v)) => {
                    used.insert(*v);
                }
                _ => {}
            }
        }
        let mut changed = false;
        for &b in &f.layout.clone() {
            let insts = &f.insts;
            let before = f.blocks[b].insts.len();
            f.blocks[b].insts.retain(|&i| {
                let d = &insts[i];
                d.has_side_effects() || d.dst().is_none_or(|v| used.contains(&v))
            });
            changed |= f.blocks[b].insts.len() != before;
        }
        if !changed {
            return;
        }
    }
}

/// Orders blocks in reverse postorder from the entry, visiting a branch's `else` side
/// first so that its `then` side follows the branch: most branches then fall through, and
/// the early-exit block (reached from everywhere) sinks to the end.
pub fn layout_rpo(f: &mut Function) {
    let mut seen = HashSet::new();
    let mut post = Vec::new();
    // Iterative DFS: (block, successors left to visit).
    let entry = f.entry();
    let succs = |f: &Function, b: Block| -> Vec<Block> {
        match &f.blocks[b].term {
            Some(Terminator::Branch { then, else_, .. }) => vec![*else_, *then],
            Some(t) => t.successors(),
            None => Vec::new(),
        }
    };
    let mut stack: Vec<(Block, Vec<Block>)> = vec![(entry, succs(f, entry))];
    seen.insert(entry);
    while let Some((b, rest)) = stack.last_mut() {
        match rest.pop() {
            Some(s) => {
                if seen.insert(s) {
                    let next = succs(f, s);
                    stack.push((s, next));
                }
            }
            None => {
                post.push(*b);
                stack.pop();
            }
        }
    }
    post.reverse();
    f.layout = post;
}
