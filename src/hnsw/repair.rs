//! Link repair and reachability for [`Graph`].
//!
//! Links are directed and there are no reverse lists (they would cost 2m
//! words per node). Instead every slot carries its exact layer-0 in-degree,
//! so a repair that looks for the lists naming a slot X (before X's vector is
//! replaced) can search only near X: X's own neighbourhood and a beam search
//! around X's vector. When the lists found account for X's whole in-degree
//! the search is provably complete; otherwise it falls back to a full scan.
//! Upper layers hold about 1/m of the nodes and are scanned.
//!
//! The same counter says when a live node has no incoming layer-0 link (no
//! search can reach it): after every insert batch and every compaction such
//! nodes are linked from their nearest neighbours.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{with_scratch, Cand, Entry, Graph, Scratch, NO_SLOT};

/// Reused slots beyond this share of all slots make a single pass over every
/// list cheaper than one targeted search per slot.
const FULL_SCAN_DIVISOR: usize = 64;
/// Width of the second beam looking for in-linkers, in ef_construction.
const WIDE_BEAM: usize = 4;
/// Graphs up to this many live slots get every slot self-queried after a
/// reachability walk: reached is not yet found, and at this size a search
/// per slot costs little next to the batch that triggered the walk.
const SELF_QUERY_MAX: usize = 1024;
/// The beam width those self-queries use: the index's default.
const SELF_QUERY_EF: usize = crate::index::DEFAULT_EF_SEARCH as usize;
/// Rounds of self-query repair (each link added can, rarely, cost another
/// slot its place; the check after the rounds stays best effort).
const SELF_QUERY_ROUNDS: usize = 4;

impl Graph {
    /// Layer-0 in-degree of every slot, counted from the lists.
    pub(super) fn count_in_degrees(&self) -> Vec<AtomicU32> {
        let mut counts = vec![0u32; self.slots()];
        let mut links = Vec::new();
        for n in 0..self.slots() as u32 {
            self.read_links(n, 0, &mut links);
            for &l in &links {
                if let Some(c) = counts.get_mut(l as usize) {
                    *c += 1;
                }
            }
        }
        counts.into_iter().map(AtomicU32::new).collect()
    }

    /// Brings the in-degree counters in line with a layer-0 list about to be
    /// replaced by `new`. The caller holds the list's lock, so `words` does
    /// not change underneath.
    pub(super) fn count_list_change(&self, count: &AtomicU32, words: &[AtomicU32], new: &[u32]) {
        let old_n = (count.load(Ordering::Relaxed) as usize).min(words.len());
        let old = &words[..old_n];
        for w in old {
            let l = w.load(Ordering::Relaxed);
            if !new.contains(&l) {
                let before = self.indeg[l as usize].fetch_sub(1, Ordering::Relaxed);
                if before == 1 {
                    self.orphans
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(l);
                }
            }
        }
        for &l in new {
            if !old.iter().any(|w| w.load(Ordering::Relaxed) == l) {
                self.indeg[l as usize].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The layer-0 in-degree of a slot (its counter).
    pub fn in_degree(&self, slot: u32) -> u32 {
        self.indeg[slot as usize].load(Ordering::Relaxed)
    }

    fn list_contains(&self, node: u32, level: u8, x: u32) -> bool {
        match self.list(node, level).split_first() {
            Some((count, words)) => {
                let n = (count.load(Ordering::Acquire) as usize).min(words.len());
                words[..n].iter().any(|w| w.load(Ordering::Relaxed) == x)
            }
            None => false,
        }
    }

    /// The nearest live slots to `q` on `level` (at most ef_construction,
    /// nearest first, `exclude` left out).
    pub(super) fn nearest_live(
        &self,
        q: &[f32],
        level: u8,
        exclude: u32,
        s: &mut Scratch,
    ) -> Vec<Cand> {
        let Some(entry) = self.entry() else {
            return Vec::new();
        };
        let mut links = Vec::new();
        let start = self.descend(q, entry, level, &mut links);
        self.search_layer(
            q,
            start,
            self.params.ef_construction,
            level,
            true,
            exclude,
            s,
        );
        s.best.drain().collect()
    }

    /// Every slot whose layer-0 list names `x`, into `out` (unordered).
    /// Looks where in-links come from (x's neighbours, a beam around x's
    /// vector, x's two-hop neighbourhood) and stops as soon as the count
    /// matches x's in-degree; scans every list only when that fails.
    /// Returns whether the scan was needed.
    pub(super) fn in_linkers0(&self, x: u32, s: &mut Scratch, out: &mut Vec<u32>) -> bool {
        out.clear();
        let need = self.in_degree(x) as usize;
        if need == 0 {
            return false;
        }
        let check = |c: u32, out: &mut Vec<u32>| {
            if c != x && !out.contains(&c) && self.list_contains(c, 0, x) {
                out.push(c);
            }
        };
        let mut hop1 = Vec::new();
        self.read_links(x, 0, &mut hop1);
        for &c in &hop1 {
            check(c, out);
        }
        if out.len() >= need {
            return false;
        }
        // A beam from the entry point towards x's vector, checking every
        // slot it touches, until `need` in-linkers are found.
        let beam = |ef: usize, s: &mut Scratch, out: &mut Vec<u32>| {
            let Some(entry) = self.entry() else {
                return false;
            };
            let q = self.vector(x);
            let mut links = Vec::new();
            let start = self.descend(q, entry, 0, &mut links);
            self.beam_until(q, start, ef, s, |c| {
                check(c, out);
                out.len() >= need
            })
        };
        if beam(self.params.ef_construction, s, out) {
            return false;
        }
        let mut hop2 = Vec::new();
        for &h in &hop1 {
            self.read_links(h, 0, &mut hop2);
            for &c in &hop2 {
                check(c, out);
            }
            if out.len() >= need {
                return false;
            }
        }
        // Lists written while the graph was small can link from farther
        // away: a wider beam still costs far less than a full scan.
        if beam(self.params.ef_construction * WIDE_BEAM, s, out) {
            return false;
        }
        for c in 0..self.slots() as u32 {
            check(c, out);
        }
        true
    }

    /// Beam search (width `ef`) on layer 0 over every slot,
    /// tombstones included, calling `seen` on each slot it reaches until
    /// `seen` returns true (then returns true).
    fn beam_until(
        &self,
        q: &[f32],
        start: Cand,
        ef: usize,
        s: &mut Scratch,
        mut seen: impl FnMut(u32) -> bool,
    ) -> bool {
        s.visited.reset(self.slots());
        s.frontier.clear();
        s.best.clear();
        s.visited.insert(start.slot);
        s.frontier.push(std::cmp::Reverse(start));
        s.best.push(start);
        if seen(start.slot) {
            return true;
        }
        let mut links = std::mem::take(&mut s.links);
        let mut done = false;
        while let Some(std::cmp::Reverse(c)) = s.frontier.pop() {
            if done {
                break;
            }
            if c.dist > s.best.bound(ef) {
                break;
            }
            self.read_links(c.slot, 0, &mut links);
            for &n in &links {
                if !s.visited.insert(n) {
                    continue;
                }
                // Every slot the beam touches is checked, not just the ones
                // it expands: in-linkers of x can sit just outside the beam.
                if seen(n) {
                    done = true;
                    break;
                }
                let d = self.distance_to(q, n);
                if d < s.best.bound(ef) {
                    let cand = Cand { dist: d, slot: n };
                    s.frontier.push(std::cmp::Reverse(cand));
                    s.best.push_bounded(cand, ef);
                }
            }
        }
        s.links = links;
        done
    }

    /// Before tombstones' slots take new vectors: every list that links to
    /// one of them is rebuilt from its other links plus the tombstones' own
    /// links, so nothing that was reachable through them is cut off and no
    /// list keeps pointing at a vector it never chose. Then the slots' own
    /// lists are emptied for the re-insert. The lists are found through the
    /// in-degree counters (see the module docs): the cost is a few beam
    /// searches per reused slot, not a pass over the whole graph, unless the
    /// batch reuses many slots.
    pub(super) fn detach(&mut self, reused: &[u32]) {
        if reused.is_empty() {
            return;
        }
        let marks: Option<Vec<bool>> = (reused.len() > 16).then(|| {
            let mut m = vec![false; self.slots()];
            for &r in reused {
                m[r as usize] = true;
            }
            m
        });
        let is_reused = |s: u32| match &marks {
            Some(m) => m[s as usize],
            None => reused.contains(&s),
        };
        let mut affected: Vec<(u32, u8)> = Vec::new();
        let mut list = Vec::new();
        if reused.len() * FULL_SCAN_DIVISOR >= self.slots() {
            for n in 0..self.slots() as u32 {
                if is_reused(n) {
                    continue;
                }
                for level in 0..=self.levels[n as usize] {
                    self.read_links(n, level, &mut list);
                    if list.iter().any(|&l| is_reused(l)) {
                        affected.push((n, level));
                    }
                }
            }
        } else {
            with_scratch(|s| {
                for &r in reused {
                    self.in_linkers0(r, s, &mut list);
                    affected.extend(list.iter().filter(|&&n| !is_reused(n)).map(|&n| (n, 0)));
                    for level in 1..=self.levels[r as usize] {
                        for n in 0..self.slots() as u32 {
                            if self.levels[n as usize] >= level
                                && !is_reused(n)
                                && self.list_contains(n, level, r)
                            {
                                affected.push((n, level));
                            }
                        }
                    }
                }
            });
            affected.sort_unstable();
            affected.dedup();
        }
        let mut via = Vec::new();
        let mut chosen = Vec::new();
        let mut cands: Vec<Cand> = Vec::new();
        for &(n, level) in &affected {
            self.read_links(n, level, &mut list);
            let base = self.vector(n);
            cands.clear();
            for &l in &list {
                if is_reused(l) {
                    self.read_links(l, level, &mut via);
                    for &v in &via {
                        if v != n && !is_reused(v) {
                            cands.push(Cand {
                                dist: self.dist.eval(base, self.vector(v)),
                                slot: v,
                            });
                        }
                    }
                } else {
                    cands.push(Cand {
                        dist: self.dist.eval(base, self.vector(l)),
                        slot: l,
                    });
                }
            }
            cands.sort_unstable();
            cands.dedup_by_key(|c| c.slot);
            self.select_filled(&cands, self.max_degree(level), &mut chosen);
            self.write_links(n, level, &chosen);
        }
        for &r in reused {
            for level in 0..=self.levels[r as usize] {
                self.write_links(r, level, &[]);
            }
        }
    }

    /// The heuristic's choice, topped up with the nearest pruned candidates:
    /// a repaired node has lost links and should not lose reach as well.
    pub(super) fn select_filled(&self, cands: &[Cand], max: usize, chosen: &mut Vec<u32>) {
        self.select_heuristic(cands, max, chosen);
        for c in cands {
            if chosen.len() >= max {
                break;
            }
            if !chosen.contains(&c.slot) {
                chosen.push(c.slot);
            }
        }
    }

    /// Makes sure every live slot except the entry point has an incoming
    /// layer-0 link: checks the slots of `batch` and every slot whose
    /// in-degree fell to 0 since the last pass, and links each one that has
    /// none into a list that still has room (nothing is evicted, so nothing
    /// else is cut off).
    ///
    /// An in-link is not yet reachability: racing inserts can leave a small
    /// island whose nodes only link to each other, and a slot with no room
    /// near it needs a link evicted. When the batch is large enough to pay
    /// for it (like a full scan in `detach`), or when some slot could not be
    /// linked without evicting, a walk over every layer-0 link from the
    /// entry point finds the unreached slots and attaches them
    /// (`attach_unreached`, which provably reaches everything).
    pub(super) fn ensure_reachable(&mut self, batch: &[u32]) {
        let mut todo = std::mem::take(&mut *self.orphans.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(entry) = self.entry() else {
            return;
        };
        if self.slots() - self.free.len() < 2 {
            return;
        }
        todo.extend_from_slice(batch);
        with_scratch(|s| self.relink_unreachable(todo, batch, entry, s));
    }

    /// The body of `ensure_reachable`, with a scratch set.
    fn relink_unreachable(&mut self, todo: Vec<u32>, batch: &[u32], entry: Entry, s: &mut Scratch) {
        let mut links = Vec::new();
        // Small graphs always get the walk (and with it the self-query of
        // the batch): it is cheap there, and it is what makes every item of
        // an index of up to SELF_QUERY_MAX items findable by its own vector.
        let live = self.slots() - self.free.len();
        let mut walk = batch.len() * FULL_SCAN_DIVISOR >= self.slots() || live <= SELF_QUERY_MAX;
        for x in todo {
            if self.deleted[x as usize] || x == entry.slot || self.in_degree(x) > 0 {
                continue;
            }
            if !self.link_into_room(x, s, &mut links) {
                walk = true;
            }
        }
        if walk {
            self.attach_unreached(entry, batch, s, &mut links);
        }
    }

    /// Links `x` from one of its nearest live nodes (as a search from the
    /// entry point finds them), nearest first: into a list with room, or
    /// into a full one when the pruning heuristic keeps `x` and every link it
    /// drops has another in-link left (no new orphan); failing that, into the
    /// nearest list with room. Returns false when nothing took `x`.
    fn link_into_room(&self, x: u32, s: &mut Scratch, links: &mut Vec<u32>) -> bool {
        let cands = self.nearest_live(self.vector(x), 0, x, s);
        let near = &cands[..cands.len().min(self.params.m)];
        if near
            .iter()
            .any(|c| self.offer(c.slot, x, |l| self.in_degree(l) >= 2, links))
        {
            return true;
        }
        cands.iter().any(|c| self.push_if_room(c.slot, x, links))
    }

    /// Appends `x` to `host`'s layer-0 list if it has room.
    fn push_if_room(&self, host: u32, x: u32, links: &mut Vec<u32>) -> bool {
        self.read_links(host, 0, links);
        if links.len() >= self.max_degree(0) {
            return false;
        }
        links.push(x);
        self.write_links(host, 0, links);
        true
    }

    /// Puts `x` into `host`'s layer-0 list: appended if there is room, else
    /// as the pruning heuristic would choose, but only when it keeps `x` and
    /// every link it drops may go (`may_drop`).
    fn offer(
        &self,
        host: u32,
        x: u32,
        may_drop: impl Fn(u32) -> bool,
        links: &mut Vec<u32>,
    ) -> bool {
        if self.push_if_room(host, x, links) {
            return true;
        }
        let base = self.vector(host);
        let mut cands: Vec<Cand> = links
            .iter()
            .chain(std::iter::once(&x))
            .map(|&n| Cand {
                dist: self.dist.eval(base, self.vector(n)),
                slot: n,
            })
            .collect();
        cands.sort_unstable();
        let mut chosen = Vec::with_capacity(self.max_degree(0));
        self.select_heuristic(&cands, self.max_degree(0), &mut chosen);
        if !chosen.contains(&x) || links.iter().any(|&l| !chosen.contains(&l) && !may_drop(l)) {
            return false;
        }
        self.write_links(host, 0, &chosen);
        true
    }

    /// Makes every live slot reachable from the entry point over layer-0
    /// links. A walk from the entry point records the link that first reached
    /// each slot: those links form a tree spanning the reached set. Each
    /// unreached live slot is then linked from a reached node, either into
    /// free room or in place of a link that is not a tree link. Tree links
    /// are never removed, so nothing reached is ever lost, and each link
    /// adds at least one slot to the reached set: one pass over the slots
    /// ends with every live slot reached.
    ///
    /// A reached node with room or a non-tree link always exists: if every
    /// one of the R reached nodes had a full list (2m >= 4 links, all to
    /// reached nodes) of tree links only, the tree would have 2m * R links,
    /// but a tree spanning R nodes has R - 1.
    ///
    /// Small graphs then get the slots of `batch` and the attached ones
    /// self-queried (`link_self_query_misses`).
    fn attach_unreached(&self, entry: Entry, batch: &[u32], s: &mut Scratch, links: &mut Vec<u32>) {
        let mut attached = Vec::new();
        let mut parent = vec![NO_SLOT; self.slots()];
        self.extend_tree(entry.slot, entry.slot, &mut parent);
        for x in 0..self.slots() as u32 {
            if parent[x as usize] != NO_SLOT || self.deleted[x as usize] {
                continue;
            }
            match self.attach(x, &parent, s, links) {
                Some(host) => {
                    self.extend_tree(x, host, &mut parent);
                    attached.push(x);
                }
                // Impossible by the argument above; the invariant check
                // would report x rather than this loop spinning or panicking.
                None => debug_assert!(false, "no reached node can take slot {x}"),
            }
        }
        let live = self.slots() - self.free.len();
        if live > SELF_QUERY_EF && live <= SELF_QUERY_MAX {
            attached.extend_from_slice(batch);
            self.link_self_query_misses(entry, &attached, &parent, s, links);
        }
    }

    /// Every live slot of `check` that a search for its own vector (from the entry
    /// point, at the default ef) does not return first is linked from the
    /// nearest node that search kept: the search expands every node it
    /// keeps, so the same search then meets the slot. Links go into room or
    /// replace a non-tree link (`parent`, from `attach_unreached`), so
    /// everything stays reached.
    fn link_self_query_misses(
        &self,
        entry: Entry,
        check: &[u32],
        parent: &[u32],
        s: &mut Scratch,
        links: &mut Vec<u32>,
    ) {
        for _ in 0..SELF_QUERY_ROUNDS {
            let mut fixed = false;
            for &x in check {
                if self.deleted[x as usize] || x == entry.slot {
                    continue;
                }
                let q = self.vector(x);
                let start = self.descend(q, entry, 0, links);
                self.search_layer(
                    q,
                    start,
                    SELF_QUERY_EF,
                    0,
                    !self.free.is_empty(),
                    NO_SLOT,
                    s,
                );
                let kept: Vec<Cand> = s.best.drain().collect();
                let own = self.distance_to(q, x);
                if kept.first().is_none_or(|c| c.slot == x || c.dist <= own) {
                    continue;
                }
                fixed = true;
                let near = &kept[..kept.len().min(self.params.m)];
                let done = near
                    .iter()
                    .any(|c| self.offer(c.slot, x, |l| parent[l as usize] != c.slot, links))
                    || kept.iter().any(|c| self.push_if_room(c.slot, x, links));
                if !done {
                    kept.iter()
                        .any(|c| self.replace_non_tree_link(c.slot, x, parent, links));
                }
            }
            if !fixed {
                break;
            }
        }
    }

    /// Marks `start` as reached through a link from `from` and walks on from
    /// it through every slot not reached yet, recording for each the node
    /// whose link reached it.
    fn extend_tree(&self, start: u32, from: u32, parent: &mut [u32]) {
        parent[start as usize] = from;
        let mut stack = vec![start];
        let mut links = Vec::new();
        while let Some(n) = stack.pop() {
            self.read_links(n, 0, &mut links);
            for &l in &links {
                if parent[l as usize] == NO_SLOT {
                    parent[l as usize] = n;
                    stack.push(l);
                }
            }
        }
    }

    /// Links unreached `x` from a reached node; returns that node. In order
    /// of preference: the nearest reached node (of those a search from the
    /// entry point finds) whose list has room; the nearest of them with a
    /// link that is not a tree link, which x replaces (the farthest such
    /// link); the nearest of all reached slots with room or such a link.
    fn attach(&self, x: u32, parent: &[u32], s: &mut Scratch, links: &mut Vec<u32>) -> Option<u32> {
        let reached = |n: u32| parent[n as usize] != NO_SLOT;
        let cands: Vec<Cand> = self
            .nearest_live(self.vector(x), 0, x, s)
            .into_iter()
            .filter(|c| reached(c.slot))
            .collect();
        let near = &cands[..cands.len().min(self.params.m)];
        for c in near {
            if self.offer(c.slot, x, |l| parent[l as usize] != c.slot, links) {
                return Some(c.slot);
            }
        }
        for c in &cands {
            if self.push_if_room(c.slot, x, links) {
                return Some(c.slot);
            }
        }
        for c in &cands {
            if self.replace_non_tree_link(c.slot, x, parent, links) {
                return Some(c.slot);
            }
        }
        // Rare (the search found no usable node): every reached slot, live
        // ones first, nearest first. The argument above says one qualifies.
        let q = self.vector(x);
        let mut all: Vec<(bool, Cand)> = (0..self.slots() as u32)
            .filter(|&n| reached(n))
            .map(|n| {
                let dist = self.distance_to(q, n);
                (self.deleted[n as usize], Cand { dist, slot: n })
            })
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, c) in &all {
            if self.push_if_room(c.slot, x, links)
                || self.replace_non_tree_link(c.slot, x, parent, links)
            {
                return Some(c.slot);
            }
        }
        None
    }

    /// Replaces `host`'s farthest layer-0 link that is not a tree link (its
    /// target was first reached through another node) with `x`; false when
    /// every link of `host` is a tree link.
    fn replace_non_tree_link(
        &self,
        host: u32,
        x: u32,
        parent: &[u32],
        links: &mut Vec<u32>,
    ) -> bool {
        self.read_links(host, 0, links);
        let base = self.vector(host);
        let victim = links
            .iter()
            .enumerate()
            .filter(|&(_, &l)| parent[l as usize] != host)
            .map(|(i, &l)| (i, self.dist.eval(base, self.vector(l))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match victim {
            Some((i, _)) => {
                links[i] = x;
                self.write_links(host, 0, links);
                true
            }
            None => false,
        }
    }

    /// Which slots a walk over layer-0 links from `start` reaches.
    fn reached_from(&self, start: u32) -> Vec<bool> {
        let mut parent = vec![NO_SLOT; self.slots()];
        self.extend_tree(start, start, &mut parent);
        parent.into_iter().map(|p| p != NO_SLOT).collect()
    }

    /// Checks the graph's structural invariants: links in range, no self
    /// links or repeats, degrees within bounds, upper links to nodes that
    /// have that level, the entry point on the top level of the live nodes,
    /// in-degree counters equal to a fresh count, every live slot but the
    /// entry point with an incoming layer-0 link, and every live slot
    /// reachable from the entry point over layer-0 links. The first violation found
    /// is described in the error. Part of `check_invariants`.
    pub(super) fn check_links_and_reach(&self) -> Result<(), String> {
        let slots = self.slots() as u32;
        let mut links = Vec::new();
        for n in 0..slots {
            for level in 0..=self.levels[n as usize] {
                self.read_links(n, level, &mut links);
                if links.len() > self.max_degree(level) {
                    return Err(format!("slot {n} level {level}: {} links", links.len()));
                }
                for (i, &l) in links.iter().enumerate() {
                    if l >= slots || l == n || links[..i].contains(&l) {
                        return Err(format!("slot {n} level {level}: bad link {l}"));
                    }
                    if self.levels[l as usize] < level {
                        return Err(format!(
                            "slot {n} level {level}: link {l} has only level {}",
                            self.levels[l as usize]
                        ));
                    }
                }
            }
        }
        let fresh = self.count_in_degrees();
        for n in 0..slots {
            let (c, f) = (self.in_degree(n), fresh[n as usize].load(Ordering::Relaxed));
            if c != f {
                return Err(format!("slot {n}: in-degree counter {c}, lists say {f}"));
            }
        }
        let live = slots as usize - self.free.len();
        let Some(entry) = self.entry() else {
            return if live == 0 {
                Ok(())
            } else {
                Err(format!("{live} live slots but no entry point"))
            };
        };
        if entry.slot >= slots || self.levels[entry.slot as usize] != entry.level {
            return Err(format!("entry point {entry:?} does not match its slot"));
        }
        for n in 0..slots {
            if self.deleted[n as usize] {
                continue;
            }
            if self.levels[n as usize] > entry.level {
                return Err(format!("slot {n} is above the entry point's level"));
            }
            if live >= 2 && n != entry.slot && self.in_degree(n) == 0 {
                return Err(format!("live slot {n} has no incoming layer-0 link"));
            }
        }
        let reached = self.reached_from(entry.slot);
        if let Some(n) = (0..slots).find(|&n| !self.deleted[n as usize] && !reached[n as usize]) {
            return Err(format!(
                "live slot {n} cannot be reached from the entry point on layer 0"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Graph, GraphParams};
    use crate::hnsw::Metric;

    fn graph(n: usize, seed: u64) -> Graph {
        let dim = 8;
        let mut g = Graph::new(
            GraphParams {
                dim,
                metric: Metric::L2,
                m: 6,
                ef_construction: 40,
            },
            seed,
        );
        let mut state = seed;
        let v: Vec<f32> = (0..n * dim)
            .map(|_| (super::super::next_u64(&mut state) >> 40) as f32 / (1u64 << 24) as f32)
            .collect();
        g.insert_batch(&v, 1);
        g
    }

    #[test]
    fn targeted_in_linker_search_matches_a_full_scan() {
        let g = graph(3000, 7);
        let mut s = super::super::Scratch::new();
        let mut found = Vec::new();
        let mut scans = 0;
        for x in 0..g.slots() as u32 {
            scans += g.in_linkers0(x, &mut s, &mut found) as usize;
            found.sort_unstable();
            let all: Vec<u32> = (0..g.slots() as u32)
                .filter(|&c| g.neighbours(c, 0).contains(&x))
                .collect();
            assert_eq!(found, all, "in-linkers of slot {x}");
        }
        // The point of the counters: a full scan is the exception.
        assert!(scans * 20 < g.slots(), "{scans} full scans");
    }

    #[test]
    fn counters_stay_exact_through_reuse() {
        let mut g = graph(2000, 3);
        for s in (0..2000).step_by(3) {
            g.remove(s);
        }
        let v: Vec<f32> = (0..400 * 8)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect();
        g.insert_batch(&v[..8], 1);
        g.insert_batch(&v, 1);
        g.check_invariants().unwrap();
    }

    /// A level-0 graph with the given layer-0 lists and tombstones; slot 0
    /// is the entry point.
    fn by_hand(m: usize, vectors: Vec<f32>, lists: &[Vec<u32>], deleted: &[u32]) -> Graph {
        use std::sync::atomic::AtomicU32;
        let n = lists.len();
        let params = GraphParams {
            dim: vectors.len() / n,
            metric: Metric::L2,
            m,
            ef_construction: 8,
        };
        let layer0 = lists
            .iter()
            .flat_map(|l| {
                let mut words = vec![l.len() as u32];
                words.extend(l);
                words.resize(1 + 2 * m, 0);
                words
            })
            .map(AtomicU32::new)
            .collect();
        let mut dead = vec![false; n];
        for &d in deleted {
            dead[d as usize] = true;
        }
        Graph::from_parts(
            params,
            crate::hnsw::arena::Arena::from_slice(&vectors),
            layer0,
            (0..n).map(|_| Vec::new().into_boxed_slice()).collect(),
            vec![0; n],
            dead,
            deleted.to_vec(),
            0,
            1,
        )
    }

    /// m = 2 (layer-0 degree 4). The entry h's full list ends in y1, the
    /// only way into the island {y1, y2}; the island {x1, x2} is cut off.
    /// The lists x1 is offered to (h's, y1's) are full of nearer, diverse
    /// links, so the old repair forced x1 in place of h's natural victim:
    /// y1, its farthest link with a second in-linker (y2, inside the
    /// island). That cut {y1, y2} off; relinking y1 into h's list pruned x1
    /// again, and the two islands took turns until the round bound. The
    /// tree-based repair finds that every link of h and y1 is a tree link
    /// and replaces y2's link back to y1 instead, which reaches both.
    #[test]
    fn a_full_list_whose_victim_is_an_islands_only_way_in_still_converges() {
        let dim = 8;
        let e = |i: usize, len: f32| {
            let mut v = vec![0.0; dim];
            v[i] = len;
            v
        };
        let add = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f32>>();
        let (h, t1, t2, t3, y1, y2) = (0u32, 1, 2, 3, 4, 5);
        let (t4, t5, t6, t7, t8, t9, x1, x2) = (6u32, 7, 8, 9, 10, 11, 12, 13);
        let vy1 = e(6, 1.2);
        let vy2 = add(&vy1, &e(7, 0.5));
        let vx1 = e(4, 1.5);
        let rows = [
            vec![0.0; dim], // h
            e(0, 1.0),      // t1..t3: tombstones around h
            e(1, 1.0),
            e(2, 1.0),
            vy1.clone(),           // y1
            vy2.clone(),           // y2
            add(&vy1, &e(0, 0.5)), // t4..t6: tombstones around y1
            add(&vy1, &e(1, 0.5)),
            add(&vy1, &e(2, 0.5)),
            add(&vy2, &e(0, 0.4)), // t7..t9: tombstones around y2
            add(&vy2, &e(1, 0.4)),
            add(&vy2, &e(2, 0.4)),
            vx1.clone(),           // x1
            add(&vx1, &e(5, 0.5)), // x2
        ];
        let lists = vec![
            vec![t1, t2, t3, y1],
            vec![h],
            vec![h],
            vec![h],
            vec![y2, t4, t5, t6],
            vec![y1, t7, t8, t9],
            vec![y1],
            vec![y1],
            vec![y1],
            vec![y2],
            vec![y2],
            vec![y2],
            vec![x2],
            vec![x1],
        ];
        let mut g = by_hand(
            2,
            rows.concat(),
            &lists,
            &[t1, t2, t3, t4, t5, t6, t7, t8, t9],
        );
        let err = g.check_invariants().unwrap_err();
        assert!(
            err.contains(&format!("live slot {x1} cannot be reached")),
            "{err}"
        );
        let all: Vec<u32> = (0..g.slots() as u32).collect();
        g.ensure_reachable(&all);
        g.check_invariants().unwrap();
        // Nothing but the non-tree link was given up.
        assert_eq!(g.neighbours(h, 0), [t1, t2, t3, y1]);
        assert_eq!(g.neighbours(y1, 0), [y2, t4, t5, t6]);
        assert!(g.neighbours(y2, 0).contains(&x1));
    }

    /// Any graph at all, with most lists full, links mostly inside small
    /// blocks (islands with few ways in) and tombstones scattered in it,
    /// ends with every live slot reached after one repair.
    #[test]
    fn repair_reaches_every_live_slot_of_random_graphs() {
        let mut state = 11u64;
        let mut next = |below: usize| (super::super::next_u64(&mut state) % below as u64) as usize;
        for round in 0..300 {
            let m = 2 + round % 3;
            let n = 12 + next(60);
            let block = 2 * m + 1 + next(4);
            let dim = 3;
            // Each block a tight cluster, as the islands of racing inserts.
            let centres: Vec<f32> = (0..n * dim).map(|_| next(1000) as f32 / 100.0).collect();
            let vectors: Vec<f32> = (0..n * dim)
                .map(|i| centres[i / dim / block * dim + i % dim] + next(1000) as f32 / 2000.0)
                .collect();
            let lists: Vec<Vec<u32>> = (0..n as u32)
                .map(|s| {
                    let want = if next(16) == 0 {
                        1 + next(2 * m)
                    } else {
                        2 * m
                    };
                    let first = s as usize / block * block;
                    let size = block.min(n - first);
                    let mut l = Vec::new();
                    for _ in 0..64 {
                        if l.len() >= want {
                            break;
                        }
                        let t = if next(16) == 0 {
                            next(n)
                        } else {
                            first + next(size)
                        } as u32;
                        if t != s && !l.contains(&t) {
                            l.push(t);
                        }
                    }
                    if l.is_empty() {
                        l.push(((s as usize + 1) % n) as u32);
                    }
                    l
                })
                .collect();
            let deleted: Vec<u32> = (1..n as u32).filter(|_| next(5) == 0).collect();
            let mut g = by_hand(m, vectors, &lists, &deleted);
            let all: Vec<u32> = (0..n as u32).collect();
            g.ensure_reachable(&all);
            g.check_invariants()
                .unwrap_or_else(|e| panic!("round {round}, m {m}, {n} slots: {e}"));
        }
    }
}
