// Extensions every kernel may use; included first, before any declaration.
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
