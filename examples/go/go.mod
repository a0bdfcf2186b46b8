module vectord.local/quickstart

go 1.19

require vectord.local/vectord v0.0.0

replace vectord.local/vectord => ../../bindings/go
