//! Checks of the graph: reachability from the start, a way to an ending from every node.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::super::model::Node;
use super::Check;

impl Check<'_> {
    pub(super) fn graph(&mut self) {
        let nodes = &self.story.nodes;
        let dangling = nodes
            .iter()
            .any(|n| n.targets().iter().any(|t| !self.ids.contains(&**t)));
        let start_ok = self.ids.contains(self.story.start.as_str());
        let index: HashMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
        let edges: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                n.targets()
                    .iter()
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let mut reach = vec![false; nodes.len()];
        if let Some(&s) = index.get(self.story.start.as_str()) {
            let mut queue = VecDeque::from([s]);
            reach[s] = true;
            while let Some(i) = queue.pop_front() {
                for &j in &edges[i] {
                    if !reach[j] {
                        reach[j] = true;
                        queue.push_back(j);
                    }
                }
            }
        }
        self.reachable = reach.clone();
        // Which nodes can reach an ending (walk the edges backwards from every ending).
        let mut back: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, out) in edges.iter().enumerate() {
            for &j in out {
                back[j].push(i);
            }
        }
        let mut ends = vec![false; nodes.len()];
        let mut queue: VecDeque<usize> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, Node::Ending { .. }))
            .map(|(i, _)| i)
            .collect();
        if queue.is_empty() && !nodes.is_empty() {
            let at = self.src.find_field("nodes", 0).unwrap_or(0);
            self.error(
                self.loc(at),
                "the story has no Ending node".into(),
                Some("add at least one `Ending(id: .., title: ..)`".into()),
            );
            return;
        }
        for &i in &queue {
            ends[i] = true;
        }
        while let Some(i) = queue.pop_front() {
            for &j in &back[i] {
                if !ends[j] {
                    ends[j] = true;
                    queue.push_back(j);
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (i, n) in nodes.iter().enumerate() {
            if !seen.insert(n.id()) {
                continue;
            }
            let at = self.loc(self.node_offset(n.id(), 0));
            // With a dangling edge, unreachable nodes are mostly its cascade (the edge was meant
            // to lead there): its own error says enough until it is fixed.
            if !reach[i] && start_ok && !dangling {
                self.warn(
                    at,
                    format!(
                        "node `{}` cannot be reached from `{}`",
                        n.id(),
                        self.story.start
                    ),
                );
            }
            let reported = matches!(n, Node::Choice { options, .. } if options.is_empty());
            if !ends[i] && !dangling && !reported {
                self.error(
                    at,
                    format!(
                        "from `{}` no ending can be reached: the player would be stuck in a loop",
                        n.id()
                    ),
                    Some("give one of its paths a way to an Ending".into()),
                );
            }
        }
    }

    /// Branch nodes whose `otherwise` edges lead round in a circle: when none of their cases
    /// holds, the story would go round for ever (the runtime refuses it at that point).
    pub(super) fn branch_loops(&mut self) {
        let nodes = &self.story.nodes;
        let index: HashMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
        let otherwise = |i: usize| match &nodes[i] {
            Node::Branch { otherwise, .. } => index.get(otherwise.as_str()).copied(),
            _ => None,
        };
        // 0: not seen, 1: on the current walk, 2: done.
        let mut mark = vec![0u8; nodes.len()];
        let mut loops = Vec::new();
        for first in 0..nodes.len() {
            let mut path = Vec::new();
            let mut at = Some(first);
            while let Some(i) = at.filter(|&i| mark[i] == 0 && otherwise(i).is_some()) {
                mark[i] = 1;
                path.push(i);
                at = otherwise(i);
            }
            if let Some(i) = at.filter(|&i| mark[i] == 1)
                && let Some(from) = path.iter().position(|&p| p == i)
            {
                loops.push(path[from..].to_vec());
            }
            for i in path {
                mark[i] = 2;
            }
        }
        for cycle in loops {
            let ids: Vec<&str> = cycle.iter().map(|&i| nodes[i].id()).collect();
            let at = self.loc(self.node_offset(ids[0], 0));
            let mut round = ids.join("` → `");
            round.push_str(&format!("` → `{}", ids[0]));
            self.error(
                at,
                format!(
                    "Branch nodes loop through their `otherwise`: `{round}`; when none of their \
                     cases holds, the story never leaves them"
                ),
                Some("point one `otherwise` at a node that is not part of the loop".into()),
            );
        }
    }
}
