"""The face pipeline: upload bytes -> RGB (`images`) -> largest face, aligned (`faces`) -> vectors and
explanation in micro-batched model passes (`batcher`, `engine`); `render` makes thumbnails and overlays."""
