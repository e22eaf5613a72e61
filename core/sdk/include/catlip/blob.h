// catlip/blob.h - the bytes of a Bytes field or a Tensor: owned, or a shared
// read-only view of memory someone else keeps alive.
//
// A Blob reads like a std::string (data(), size(), operator[], comparison,
// string_view) and is either
//   - owned: a std::string of its own (what a stage builds), or
//   - shared: a view of bytes kept alive by a reference-counted holder, such
//     as a shared-memory slab of the producer upstream (the runtime maps a
//     large field from the producer's pool instead of copying it, see
//     ARCHITECTURE.md "Data path"). Copying a shared Blob copies the
//     reference, not the bytes.
// Mutation is copy-on-write: the non-const accessors (data(), operator[],
// resize, assign, append, ...) first copy a shared Blob into an owned one,
// so a stage never writes into another process's memory. (So read a field
// through a const reference, e.g. std::as_const(b.data).data(): the
// non-const data() of a shared Blob copies it.) The one exception is a
// writable Blob, which Emitter::allocate() hands a stage: an extent of its
// own shared-memory pool that it fills in place (data(), operator[]) before
// emitting it; a copy of a writable Blob is read-only. A stage that
// passes a shared field on unchanged lets the runtime forward the reference
// (a descriptor) rather than the bytes; to keep that, read it through a
// const reference.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace catlip {

// What keeps the bytes of a shared Blob alive. The runtime derives from it
// (its shared-memory views); a stage has no need to.
struct BlobHolder {
  virtual ~BlobHolder() = default;
};

class Blob {
 public:
  Blob() noexcept = default;
  Blob(std::string s) noexcept : own_(std::move(s)) {}  // NOLINT: a string is a Blob
  Blob(const char* s) : own_(s) {}                      // NOLINT
  Blob(const char* p, size_t n) : own_(p, n) {}
  Blob(std::string_view s) : own_(s) {}                  // NOLINT
  Blob(size_t n, char c) : own_(n, c) {}

  // A read-only view of n bytes at p that `holder` keeps alive.
  static Blob shared(const char* p, size_t n, std::shared_ptr<const BlobHolder> holder) {
    Blob b;
    b.view_ = p;
    b.n_ = n;
    b.holder_ = std::move(holder);
    return b;
  }
  // The same, writable in place by whoever holds this Blob (the runtime's
  // Emitter::allocate). A copy of it is read-only; moving keeps it writable.
  static Blob writable(char* p, size_t n, std::shared_ptr<const BlobHolder> holder) {
    Blob b = shared(p, n, std::move(holder));
    b.writable_ = true;
    return b;
  }
  Blob(const Blob& o) : own_(o.own_), view_(o.view_), n_(o.n_), holder_(o.holder_) {}
  Blob(Blob&& o) noexcept
      : own_(std::move(o.own_)), view_(o.view_), n_(o.n_), holder_(std::move(o.holder_)), writable_(o.writable_) {
    o.drop();
  }
  Blob& operator=(const Blob& o) {
    if (this != &o) {
      own_ = o.own_;
      view_ = o.view_;
      n_ = o.n_;
      holder_ = o.holder_;
      writable_ = false;
    }
    return *this;
  }
  Blob& operator=(Blob&& o) noexcept {
    if (this != &o) {
      own_ = std::move(o.own_);
      view_ = o.view_;
      n_ = o.n_;
      holder_ = std::move(o.holder_);
      writable_ = o.writable_;
      o.drop();
    }
    return *this;
  }

  bool is_shared() const noexcept { return holder_ != nullptr; }
  bool is_writable() const noexcept { return writable_; }
  const std::shared_ptr<const BlobHolder>& holder() const noexcept { return holder_; }

  const char* data() const noexcept { return holder_ ? view_ : own_.data(); }
  size_t size() const noexcept { return holder_ ? n_ : own_.size(); }
  size_t length() const noexcept { return size(); }
  bool empty() const noexcept { return size() == 0; }
  const char& operator[](size_t i) const noexcept { return data()[i]; }
  const char* begin() const noexcept { return data(); }
  const char* end() const noexcept { return data() + size(); }
  std::string_view view() const noexcept { return {data(), size()}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT
  std::string str() const { return std::string(data(), size()); }

  // Mutation: copy-on-write for a shared Blob.
  char* data() { return writable_ ? const_cast<char*>(view_) : own().data(); }
  char& operator[](size_t i) { return data()[i]; }
  char* begin() { return data(); }
  char* end() { return data() + size(); }
  void resize(size_t n) { own().resize(n); }
  void resize(size_t n, char c) { own().resize(n, c); }
  void reserve(size_t n) { own().reserve(n); }
  void clear() noexcept {
    drop();
    own_.clear();
  }
  Blob& assign(const char* p, size_t n) {
    drop();
    own_.assign(p, n);
    return *this;
  }
  Blob& assign(size_t n, char c) {
    drop();
    own_.assign(n, c);
    return *this;
  }
  template <class It, class = std::enable_if_t<!std::is_integral_v<It>>>
  Blob& assign(It first, It last) {
    drop();
    own_.assign(first, last);
    return *this;
  }
  Blob& assign(std::string s) {
    drop();
    own_ = std::move(s);
    return *this;
  }
  Blob& append(const char* p, size_t n) {
    own().append(p, n);
    return *this;
  }
  Blob& operator=(std::string s) { return assign(std::move(s)); }
  Blob& operator=(const char* s) { return assign(std::string(s)); }
  Blob& operator=(std::string_view s) { return assign(std::string(s)); }
  // The bytes as an owned string, moved out when owned (the Blob is left empty).
  std::string release() {
    if (holder_) return take_copy();
    return std::move(own_);
  }

  friend bool operator==(const Blob& a, const Blob& b) noexcept { return a.view() == b.view(); }
  friend bool operator!=(const Blob& a, const Blob& b) noexcept { return !(a == b); }
  friend bool operator==(const Blob& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator!=(const Blob& a, std::string_view b) noexcept { return a.view() != b; }
  friend bool operator==(std::string_view a, const Blob& b) noexcept { return a == b.view(); }
  friend bool operator!=(std::string_view a, const Blob& b) noexcept { return a != b.view(); }
  friend bool operator==(const Blob& a, const std::string& b) noexcept { return a.view() == std::string_view(b); }
  friend bool operator!=(const Blob& a, const std::string& b) noexcept { return !(a == b); }
  friend bool operator==(const std::string& a, const Blob& b) noexcept { return b == a; }
  friend bool operator!=(const std::string& a, const Blob& b) noexcept { return !(b == a); }
  friend bool operator==(const Blob& a, const char* b) noexcept { return a.view() == std::string_view(b); }
  friend bool operator!=(const Blob& a, const char* b) noexcept { return !(a == b); }

 private:
  std::string take_copy() {
    std::string s(view_, n_);
    drop();
    return s;
  }
  std::string& own() {
    if (holder_) own_ = take_copy();
    return own_;
  }
  void drop() noexcept {
    writable_ = false;
    holder_.reset();
    view_ = nullptr;
    n_ = 0;
  }
  std::string own_;
  const char* view_ = nullptr;
  size_t n_ = 0;
  std::shared_ptr<const BlobHolder> holder_;
  bool writable_ = false;
};

}  // namespace catlip
