// Packet widths of the norm shaders (rmsnorm.wgsl, layernorm.wgsl), appended to their source: `pk` is the f32
// packet the arithmetic runs on, `*_v` the storage packets of the aliased x_t, w_t, y_t, dx_t, dy_t.
// ---- width: scalar ----
// One element per packet (any C); `*_v` are the storage types themselves.
const VW = 1u;
alias pk = f32;
alias x_v = x_t;
alias w_v = w_t;
alias y_v = y_t;
alias dx_v = dx_t;
alias dy_v = dy_t;
fn hsum(v: pk) -> f32 { return v; }

// ---- width: vec4 ----
// Four elements per packet (C % 4 == 0, so a row starts on a packet): one 16-byte (f32) or 8-byte (f16) access
// where the scalar width makes four.
const VW = 4u;
alias pk = vec4f;
alias x_v = vec4<x_t>;
alias w_v = vec4<w_t>;
alias y_v = vec4<y_t>;
alias dx_v = vec4<dx_t>;
alias dy_v = vec4<dy_t>;
fn hsum(v: pk) -> f32 { return v.x + v.y + v.z + v.w; }
