package vectord

/*
#include <stdlib.h>
#include "vectord.h"
*/
import "C"

import (
	"errors"
	"strconv"
)

// Status is a vectord status code (the C enum vectord_status).
type Status uint32

// The status codes of the C ABI.
const (
	StatusOK                Status = 0
	StatusInvalidArgument   Status = 1
	StatusNotFound          Status = 2
	StatusAlreadyExists     Status = 3
	StatusDimensionMismatch Status = 4
	StatusInvalidVector     Status = 5
	StatusCorrupt           Status = 6
	StatusUnsupported       Status = 7
	StatusStorage           Status = 8
	StatusInternal          Status = 9
	StatusConflict          Status = 10
)

// String returns the library's name of the status (for example
// "VECTORD_STATUS_NOT_FOUND" or whatever vectord_status_name reports).
func (s Status) String() string {
	p := C.vectord_status_name(C.vectord_status(s))
	if p == nil {
		return "status(" + strconv.FormatUint(uint64(s), 10) + ")"
	}
	return C.GoString(p)
}

// Sentinel errors, one per failure status. Every *Error returned by this
// package matches exactly one of them with errors.Is.
var (
	// ErrInvalidArgument: a bad argument (bad name, id, k, options, or a closed handle).
	ErrInvalidArgument = errors.New("vectord: invalid argument")
	// ErrNotFound: no index or item of that name or id.
	ErrNotFound = errors.New("vectord: not found")
	// ErrAlreadyExists: an index of that name already exists.
	ErrAlreadyExists = errors.New("vectord: already exists")
	// ErrDimensionMismatch: a vector or query of the wrong length.
	ErrDimensionMismatch = errors.New("vectord: dimension mismatch")
	// ErrInvalidVector: a vector with a NaN or infinite component, or a zero vector under Cosine.
	ErrInvalidVector = errors.New("vectord: invalid vector")
	// ErrCorrupt: a blob that is not a valid LHV1 encoding.
	ErrCorrupt = errors.New("vectord: corrupt")
	// ErrUnsupported: an operation or format version this library does not support.
	ErrUnsupported = errors.New("vectord: unsupported")
	// ErrStorage: the storage backend failed.
	ErrStorage = errors.New("vectord: storage error")
	// ErrInternal: a bug in the library.
	ErrInternal = errors.New("vectord: internal error")
	// ErrConflict: a save or delete lost a race with another writer of the
	// same store; the in-memory index is kept (Reload or Refresh to recover).
	ErrConflict = errors.New("vectord: conflict")
)

var sentinels = [...]error{
	StatusInvalidArgument:   ErrInvalidArgument,
	StatusNotFound:          ErrNotFound,
	StatusAlreadyExists:     ErrAlreadyExists,
	StatusDimensionMismatch: ErrDimensionMismatch,
	StatusInvalidVector:     ErrInvalidVector,
	StatusCorrupt:           ErrCorrupt,
	StatusUnsupported:       ErrUnsupported,
	StatusStorage:           ErrStorage,
	StatusInternal:          ErrInternal,
	StatusConflict:          ErrConflict,
}

// Error is a failure reported by the library (or by this package's own
// checks before calling it). errors.Is(err, ErrNotFound) and friends match
// it by Code; Unwrap returns the sentinel.
type Error struct {
	// Code is the status of the failed call.
	Code Status
	// Message is the library's description of the failure.
	Message string
}

// Error returns "vectord: " followed by the library's message.
func (e *Error) Error() string {
	return "vectord: " + e.Message
}

// Unwrap returns the sentinel error of e.Code (ErrInternal for unknown codes).
func (e *Error) Unwrap() error {
	if int(e.Code) > 0 && int(e.Code) < len(sentinels) {
		return sentinels[e.Code]
	}
	return ErrInternal
}

// Is reports whether target is the sentinel of e.Code, or an *Error with
// the same Code and an empty or equal Message.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
	}
	return target == e.Unwrap()
}

// kinds are the message prefixes the library uses for each status; errors
// made by this package's own checks use them too, so every message reads
// alike ("dimension mismatch: index \"x\": ...").
var kinds = [...]string{
	StatusOK:                "ok",
	StatusInvalidArgument:   "invalid argument",
	StatusNotFound:          "not found",
	StatusAlreadyExists:     "already exists",
	StatusDimensionMismatch: "dimension mismatch",
	StatusInvalidVector:     "invalid vector",
	StatusCorrupt:           "corrupt",
	StatusUnsupported:       "unsupported",
	StatusStorage:           "storage",
	StatusInternal:          "internal error",
	StatusConflict:          "conflict",
}

// newError makes an error for a failure detected in Go, before any C call.
func newError(code Status, msg string) *Error {
	return &Error{Code: code, Message: kinds[code] + ": " + msg}
}

// takeError converts the status and error out-param of one C call into a
// Go error and frees the C error. A failing status without an error object
// still yields an *Error.
func takeError[S ~uint32](st S, cerr *C.vectord_error) error {
	if st == S(C.VECTORD_STATUS_OK) {
		if cerr != nil {
			C.vectord_error_free(cerr)
		}
		return nil
	}
	if cerr == nil {
		return &Error{Code: Status(st), Message: Status(st).String()}
	}
	// The status returned by the call is authoritative; the error object
	// carries the message.
	msg := C.GoString(C.vectord_error_message(cerr))
	C.vectord_error_free(cerr)
	return &Error{Code: Status(st), Message: msg}
}

func errClosed(what string) error {
	return newError(StatusInvalidArgument, what+" is closed")
}
