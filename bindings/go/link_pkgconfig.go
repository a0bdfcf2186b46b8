//go:build vectord_pkgconfig

package vectord

// Anywhere else: the vectord that scripts/install.sh installed, found
// through pkg-config (set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a prefix
// pkg-config does not search). It links libvectord.so, so PREFIX/lib must be
// on the loader path when the program runs.

/*
#cgo pkg-config: vectord
*/
import "C"
