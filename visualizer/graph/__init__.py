"""The visualiser's core (Django-free): a network as a graph of layers, and back.

- `trace.graph_of(model, input_size)`: a PyTorch model → a graph (nodes with op, parameters, output shape, parameter
  count, FLOPs; edges with the skip and concat connections; blocks to fold).
- `build.module_of(graph)`: a graph → a model again (same state-dict keys, so the same weights give the same
  outputs).
- `infer.infer(graph)`: shapes re-inferred after edits, with a message naming the node and the mismatch.
- `edits.apply(graph, edits)`: change a parameter, resize, insert, remove, replace, rewire, group, ungroup;
  validated.
- `yolo.yolo_graph(spec, build, size)` / `yolo.yolo_apply(graph, edits, build)`: a detector's .yaml model dict as a
  graph of rows, and the same edits on rows (inserting or removing a row re-indexes every `from` reference);
  shapes and the recommender's cost profile inferred row by row, each row cached.
- `diff.diff(before, after)`: what an edited graph changed.
- `checks.engine_flags(graph, engine)`: layers the engine cannot run or runs slowly (tango_common.engines'
  LAYER_FACTS, each with its source).

A graph is plain JSON (dicts, lists, numbers), so it is stored, sent to the page and read back as is.
"""
