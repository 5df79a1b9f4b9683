// Shared by every kernel: dtype ids (the GGUF type ids, as DType numbers them), the flat index of
// a workgroup in a 2-D grid, and minus infinity.
#define DT_F32 0u
#define DT_F16 1u
#define DT_Q4_0 2u
#define DT_Q8_0 8u
#define DT_BF16 30u

// Dispatches larger than the device's x limit spill into y; groups past the end return at once.
uint group_index() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

float neg_inf() { return uintBitsToFloat(0xff800000u); }
