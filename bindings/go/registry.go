package vectord

/*
#include <stdlib.h>
#include "vectord.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"unsafe"
)

// Options tunes a Registry's storage; it is sent to the library as JSON.
// Zero fields are left out, so the library's defaults apply.
type Options struct {
	// Prefix is prepended to every storage key (e.g. "tenant-a/"); empty
	// means the library's default prefix.
	Prefix string `json:"prefix,omitempty"`
	// TimeoutMs is the budget of one storage attempt, in milliseconds.
	TimeoutMs uint64 `json:"timeout_ms,omitempty"`
	// ConnectTimeoutMs is the budget of establishing a storage connection.
	ConnectTimeoutMs uint64 `json:"connect_timeout_ms,omitempty"`
	// Retries is the number of retries after a failed storage attempt
	// (0 = the library's default).
	Retries uint32 `json:"retries,omitempty"`
	// MaxObjectBytes is the largest object stored or fetched.
	MaxObjectBytes uint64 `json:"max_object_bytes,omitempty"`
	// Save selects when changes are written: "sync" (in the call that
	// makes them), "async" (in the background) or "manual" (Index.Save and
	// Registry.Flush only).
	Save string `json:"save,omitempty"`
	// SaveIntervalMs is the period of background saves under Save "async".
	SaveIntervalMs uint64 `json:"save_interval_ms,omitempty"`
	// S3 holds the credentials of an s3:// store; nil reads the
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
	// environment variables.
	S3 *S3Credentials `json:"s3,omitempty"`
	// MultipartThresholdBytes: S3 objects larger than this are uploaded in
	// parts of this size (at least 5 MiB; 0 = the default, 64 MiB).
	MultipartThresholdBytes uint64 `json:"multipart_threshold_bytes,omitempty"`
	// ConditionalWrites is "auto" (the default), "required" or "off"; see
	// docs/storage.md.
	ConditionalWrites string `json:"conditional_writes,omitempty"`
	// ReadOnly opens a registry that never writes: Create, Delete, Add and
	// Remove fail.
	ReadOnly bool `json:"read_only,omitempty"`
	// RefreshIntervalMs runs Refresh in the background this often (0 = never).
	RefreshIntervalMs uint64 `json:"refresh_interval_ms,omitempty"`
}

// S3Credentials are the credentials of an s3:// store.
type S3Credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	SessionToken    string `json:"session_token,omitempty"`
}

// Registry is a set of named indexes, in memory or persisted. It is safe for
// concurrent use.
type Registry struct {
	mu  sync.RWMutex // RLock around every C call, Lock in Close
	ptr *C.vectord_registry
}

// Open opens a registry. storageURL "" keeps everything in memory; a
// directory path (or file:// URL), an http:// URL of a storaged service or
// an s3://bucket/prefix URL persists it, loading the indexes already stored
// there. opts may be nil.
func Open(storageURL string, opts *Options) (*Registry, error) {
	var curl, copts *C.char
	var err error
	if storageURL != "" {
		if curl, err = cString(storageURL, "storage URL"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(curl))
	}
	if opts != nil {
		js, err := json.Marshal(opts)
		if err != nil {
			return nil, newError(StatusInvalidArgument, "options: "+err.Error())
		}
		if copts, err = cString(string(js), "options"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(copts))
	}
	var out *C.vectord_registry
	var cerr *C.vectord_error
	st := C.vectord_registry_open(curl, copts, &out, &cerr)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	r := &Registry{ptr: out}
	runtime.SetFinalizer(r, (*Registry).Close)
	return r, nil
}

// Close releases the registry (after the pending saves the library makes on
// close). Index handles obtained from it stay usable. Close is idempotent
// and safe to call from several goroutines.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr != nil {
		C.vectord_registry_close(r.ptr)
		r.ptr = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// Create creates an empty index; an existing name gives an error matching
// ErrAlreadyExists.
func (r *Registry) Create(p IndexParams) (*Index, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil, errClosed("registry")
	}
	cp, err := p.cParams()
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cp.name))
	var out *C.vectord_index
	var cerr *C.vectord_error
	st := C.vectord_registry_create(r.ptr, &cp, &out, &cerr)
	runtime.KeepAlive(r)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	return wrapIndex(out), nil
}

// Get returns a new handle to the named index; a missing name gives an error
// matching ErrNotFound.
func (r *Registry) Get(name string) (*Index, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil, errClosed("registry")
	}
	cname, err := cString(name, "index name")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	var out *C.vectord_index
	var cerr *C.vectord_error
	st := C.vectord_registry_get(r.ptr, cname, &out, &cerr)
	runtime.KeepAlive(r)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	return wrapIndex(out), nil
}

// Delete removes the named index from the registry (and its storage).
// Handles to it stay usable.
func (r *Registry) Delete(name string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errClosed("registry")
	}
	cname, err := cString(name, "index name")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cname))
	var cerr *C.vectord_error
	st := C.vectord_registry_delete(r.ptr, cname, &cerr)
	runtime.KeepAlive(r)
	return takeError(st, cerr)
}

// Names returns the names of the registry's indexes, sorted.
func (r *Registry) Names() ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil, errClosed("registry")
	}
	var s *C.vectord_strings
	var cerr *C.vectord_error
	st := C.vectord_registry_names(r.ptr, &s, &cerr)
	runtime.KeepAlive(r)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	defer C.vectord_strings_free(s)
	n := int(C.vectord_strings_len(s))
	names := make([]string, n)
	for j := range names {
		names[j] = C.GoString(C.vectord_strings_get(s, C.size_t(j)))
	}
	return names, nil
}

// Import decodes an LHV1 blob (from Index.Encode) and adds the index to the
// registry under its own name.
func (r *Registry) Import(blob []byte) (*Index, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil, errClosed("registry")
	}
	var p *C.uint8_t
	if len(blob) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&blob[0]))
	}
	var out *C.vectord_index
	var cerr *C.vectord_error
	st := C.vectord_registry_import(r.ptr, p, C.size_t(len(blob)), &out, &cerr)
	runtime.KeepAlive(r)
	runtime.KeepAlive(blob)
	if err := takeError(st, cerr); err != nil {
		return nil, err
	}
	return wrapIndex(out), nil
}

// Refresh brings the registry up to date with its store: indexes other
// processes created are loaded, those whose stored version changed are
// reloaded, those whose object is gone are dropped, each only when it has
// no unsaved local changes (those are reported as ErrConflict, never
// discarded).
func (r *Registry) Refresh() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errClosed("registry")
	}
	var cerr *C.vectord_error
	st := C.vectord_registry_refresh(r.ptr, &cerr)
	runtime.KeepAlive(r)
	return takeError(st, cerr)
}

// Reload discards this registry's state of the named index (unsaved
// changes included) and loads the stored one; Index values already held see
// the reloaded contents. The usual recovery after ErrConflict.
func (r *Registry) Reload(name string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errClosed("registry")
	}
	cname, err := cString(name, "index name")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cname))
	var cerr *C.vectord_error
	st := C.vectord_registry_reload(r.ptr, cname, &cerr)
	runtime.KeepAlive(r)
	return takeError(st, cerr)
}

// Flush writes every unsaved change to storage and waits for it.
func (r *Registry) Flush() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errClosed("registry")
	}
	var cerr *C.vectord_error
	st := C.vectord_registry_flush(r.ptr, &cerr)
	runtime.KeepAlive(r)
	return takeError(st, cerr)
}
