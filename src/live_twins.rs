//! A live collection's twins, decided purely: the edge (`src/live_backbone.rs`) performs the
//! plan with Backbone.
//!
//! A create of the page's own is in its collection before the server answers it, with no id.
//! Another copy of the same model can arrive meanwhile: a catch-up read that already holds it,
//! or a broadcast of it (the server skips the writer's own socket, but not a write the page
//! made over the XHR fallback, nor a change another node replays). Backbone's `add` merges
//! by id, so a copy arriving after the reply merges into the page's model; a copy arriving
//! before it is a second model until the reply gives the page's model the same id. Then
//! [`twins`] says which models go: the copies, never the page's model (the one its code holds).

/// The copies of the model at `own` that just got the id `ids[own]` (its create's reply), in a
/// collection whose models have the ids `ids`, in order: their indexes, and the index the
/// page's model has once they are removed. `None` when it has no id or no copy.
pub fn twins<T: PartialEq>(ids: &[Option<T>], own: usize) -> Option<(Vec<usize>, usize)> {
    let id = ids.get(own)?.as_ref()?;
    let copies: Vec<usize> = (0..ids.len())
        .filter(|&i| i != own && ids[i].as_ref() == Some(id))
        .collect();
    if copies.is_empty() {
        return None;
    }
    let at = (0..own).filter(|i| !copies.contains(i)).count();
    Some((copies, at))
}

#[cfg(test)]
mod tests {
    use super::twins;

    /// A collection as Backbone keeps it, enough for the race: models (a name, an id) in
    /// order; `add` merges into a model with the same id, else appends.
    #[derive(Default)]
    struct Collection {
        models: Vec<(&'static str, Option<u32>)>,
    }

    impl Collection {
        fn add(&mut self, name: &'static str, id: Option<u32>) {
            if id.is_none() || !self.models.iter().any(|m| m.1 == id) {
                self.models.push((name, id));
            }
        }

        /// The page's model `name` gets `id` (its create's reply): the edge's `change`
        /// listener performs the plan of [`twins`].
        fn reply(&mut self, name: &str, id: u32) {
            let own = self.models.iter().position(|m| m.0 == name).unwrap();
            self.models[own].1 = Some(id);
            let ids: Vec<Option<u32>> = self.models.iter().map(|m| m.1).collect();
            if let Some((copies, at)) = twins(&ids, own) {
                let model = self.models[own];
                let mut rest: Vec<_> = (0..self.models.len())
                    .filter(|i| *i != own && !copies.contains(i))
                    .map(|i| self.models[i])
                    .collect();
                rest.insert(at, model);
                self.models = rest;
            }
        }
    }

    fn race(copy_first: bool) -> Vec<(&'static str, Option<u32>)> {
        let mut c = Collection::default();
        c.add("a", Some(1));
        c.add("mine", None); // collection.create: in at once, no id yet
        c.add("b", Some(2));
        if copy_first {
            c.add("copy", Some(7)); // the broadcast (or a catch-up read) comes first
            c.reply("mine", 7);
        } else {
            c.reply("mine", 7);
            c.add("copy", Some(7)); // merged into the page's model
        }
        c.models
    }

    #[test]
    fn a_pending_create_and_its_copy_leave_one_model_in_either_order() {
        let want = vec![("a", Some(1)), ("mine", Some(7)), ("b", Some(2))];
        assert_eq!(race(true), want);
        assert_eq!(race(false), want);
    }

    #[test]
    fn copies_go_and_the_page_model_keeps_its_place_among_the_rest() {
        // Copies before and after the page's model.
        let ids = [Some(7), Some(1), Some(7), Some(2), Some(7)];
        assert_eq!(twins(&ids, 2), Some((vec![0, 4], 1)));
        // No id yet, no copy, or out of range: nothing to do.
        assert_eq!(twins(&[Some(1), None], 1), None);
        assert_eq!(twins(&[Some(1), Some(2)], 1), None);
        assert_eq!(twins::<u32>(&[], 0), None);
    }
}
