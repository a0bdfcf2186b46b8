//go:build !vectord_pkgconfig

package vectord

// Inside the vectord repository: the header and the static library cargo
// builds, so nothing has to be installed and no loader path is needed.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libvectord.a -lm -ldl -lpthread
*/
import "C"
