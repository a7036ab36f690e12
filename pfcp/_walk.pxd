# Cython declarations for pfcp/_walk.py, read only by the optional compiled
# build (pfcp/_build_accel.py, `make accel`). The .py file stays plain Python;
# this file gives its loops C-typed positions and typed containers.

import cython


@cython.locals(
    start=Py_ssize_t,
    nxt=Py_ssize_t,
    ie_type=int,
    layout=int,
    kept=bint,
    extra=list,
    lists=list,
    lst=list,
    row=tuple,
    name=str,
    last=str,
)
cpdef object decode_group(
    object cls,
    dict table,
    tuple mandatory_names,
    bytes data,
    Py_ssize_t pos,
    Py_ssize_t end,
    dict kwargs=*,
    list order=*,
)

@cython.locals(header=dict)
cdef object _again_in_order(
    object cls, dict table, tuple mandatory_names, bytes data, Py_ssize_t start, Py_ssize_t end, dict kwargs
)

@cython.locals(parts=list, row=tuple, ie_type=int, name=str)
cpdef bytes encode_group(object obj, dict values, dict rows, tuple mandatory_names)

@cython.locals(layout=int)
cdef bytes _encode_inline(tuple row, object value)
