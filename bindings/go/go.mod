module vectord.local/vectord

go 1.19
