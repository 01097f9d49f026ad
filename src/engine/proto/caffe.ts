/**
 * Caffe's message schema (package `caffe`, proto2) as one table: for every message, its fields
 * with number, type, label and proto2 default. Field numbers, types and defaults are facts taken
 * from BVLC caffe.proto (master 9b89154); the binary codec, the prototxt parser/printer and the
 * TypeScript types below are all driven by this table, so they cannot disagree.
 *
 * Parsed messages are plain objects keyed by caffe.proto's snake_case names:
 * - optional fields are absent unless set (proto2 presence; apply defaults with `??` or defaultOf());
 * - repeated fields are always present as arrays (possibly empty);
 * - enums are their names (`pool: 'MAX'`), bytes are Uint8Array, 64-bit ints are numbers;
 * - BlobProto.data/diff and Datum.float_data are Float32Array, BlobProto.double_* Float64Array.
 */

export type ScalarType =
  | 'double' | 'float'
  | 'int32' | 'int64' | 'uint32' | 'uint64' | 'sint32' | 'sint64'
  | 'fixed32' | 'fixed64' | 'sfixed32' | 'sfixed64'
  | 'bool' | 'string' | 'bytes'

export const SCALAR_TYPES: ReadonlySet<string> = new Set<ScalarType>([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes'
])

export type Label = 'optional' | 'required' | 'repeated'
type DefaultValue = string | number | boolean

/** A field's type: a scalar name, an enum reference, or a message name from CAFFE_SCHEMA. */
export type TypeRef = ScalarType | { readonly enum: string } | string

/** One field of a message. `typed` makes a repeated float/double field a Float32Array/Float64Array. */
export interface FieldSpec {
  readonly no: number
  readonly type: TypeRef
  readonly label: Label
  readonly default?: DefaultValue | undefined
  readonly packed?: boolean
  readonly typed?: 'f32' | 'f64'
}

const opt = <const T extends TypeRef>(no: number, type: T, def?: DefaultValue) =>
  ({ no, type, label: 'optional', default: def }) as const
const req = <const T extends TypeRef>(no: number, type: T) =>
  ({ no, type, label: 'required' }) as const
const rep = <const T extends TypeRef>(no: number, type: T) =>
  ({ no, type, label: 'repeated' }) as const
const packed = <const T extends TypeRef>(no: number, type: T) =>
  ({ no, type, label: 'repeated', packed: true }) as const
const f32s = (no: number, isPacked: boolean) =>
  ({ no, type: 'float', label: 'repeated', packed: isPacked, typed: 'f32' }) as const
const f64s = (no: number) =>
  ({ no, type: 'double', label: 'repeated', packed: true, typed: 'f64' }) as const
const en = <const N extends EnumName>(name: N) => ({ enum: name }) as const

const ENGINE = { DEFAULT: 0, CAFFE: 1, CUDNN: 2 } as const
const POOL_METHOD = { MAX: 0, AVE: 1, STOCHASTIC: 2 } as const
const DIM_CHECK_MODE = { STRICT: 0, PERMISSIVE: 1 } as const

/** Every enum of caffe.proto by qualified name (without the `caffe.` package), name → number. */
export const CAFFE_ENUMS = {
  Phase: { TRAIN: 0, TEST: 1 },
  'FillerParameter.VarianceNorm': { FAN_IN: 0, FAN_OUT: 1, AVERAGE: 2 },
  'SolverParameter.SnapshotFormat': { HDF5: 0, BINARYPROTO: 1 },
  'SolverParameter.SolverMode': { CPU: 0, GPU: 1 },
  'SolverParameter.SolverType': { SGD: 0, NESTEROV: 1, ADAGRAD: 2, RMSPROP: 3, ADADELTA: 4, ADAM: 5 },
  'ParamSpec.DimCheckMode': DIM_CHECK_MODE,
  'LossParameter.NormalizationMode': { FULL: 0, VALID: 1, BATCH_SIZE: 2, NONE: 3 },
  'ConvolutionParameter.Engine': ENGINE,
  'DataParameter.DB': { LEVELDB: 0, LMDB: 1 },
  'EltwiseParameter.EltwiseOp': { PROD: 0, SUM: 1, MAX: 2 },
  'HingeLossParameter.Norm': { L1: 1, L2: 2 },
  'LRNParameter.NormRegion': { ACROSS_CHANNELS: 0, WITHIN_CHANNEL: 1 },
  'LRNParameter.Engine': ENGINE,
  'PoolingParameter.PoolMethod': POOL_METHOD,
  'PoolingParameter.Engine': ENGINE,
  'PoolingParameter.RoundMode': { CEIL: 0, FLOOR: 1 },
  'ReductionParameter.ReductionOp': { SUM: 1, ASUM: 2, SUMSQ: 3, MEAN: 4 },
  'ReLUParameter.Engine': ENGINE,
  'SigmoidParameter.Engine': ENGINE,
  'SoftmaxParameter.Engine': ENGINE,
  'TanHParameter.Engine': ENGINE,
  'SPPParameter.PoolMethod': POOL_METHOD,
  'SPPParameter.Engine': ENGINE,
  'V1LayerParameter.LayerType': {
    NONE: 0,
    ABSVAL: 35,
    ACCURACY: 1,
    ARGMAX: 30,
    BNLL: 2,
    CONCAT: 3,
    CONTRASTIVE_LOSS: 37,
    CONVOLUTION: 4,
    DATA: 5,
    DECONVOLUTION: 39,
    DROPOUT: 6,
    DUMMY_DATA: 32,
    EUCLIDEAN_LOSS: 7,
    ELTWISE: 25,
    EXP: 38,
    FLATTEN: 8,
    HDF5_DATA: 9,
    HDF5_OUTPUT: 10,
    HINGE_LOSS: 28,
    IM2COL: 11,
    IMAGE_DATA: 12,
    INFOGAIN_LOSS: 13,
    INNER_PRODUCT: 14,
    LRN: 15,
    MEMORY_DATA: 29,
    MULTINOMIAL_LOGISTIC_LOSS: 16,
    MVN: 34,
    POOLING: 17,
    POWER: 26,
    RELU: 18,
    SIGMOID: 19,
    SIGMOID_CROSS_ENTROPY_LOSS: 27,
    SILENCE: 36,
    SOFTMAX: 20,
    SOFTMAX_LOSS: 21,
    SPLIT: 22,
    SLICE: 33,
    TANH: 23,
    WINDOW_DATA: 24,
    THRESHOLD: 31
  },
  'V1LayerParameter.DimCheckMode': DIM_CHECK_MODE,
  'V0LayerParameter.PoolMethod': POOL_METHOD
} as const

export type EnumName = keyof typeof CAFFE_ENUMS
/** The string names of an enum, e.g. EnumValue<'PoolingParameter.PoolMethod'> = 'MAX' | 'AVE' | 'STOCHASTIC'. */
export type EnumValue<N extends EnumName> = keyof (typeof CAFFE_ENUMS)[N] & string

/** Every message of caffe.proto: field name → FieldSpec. */
export const CAFFE_SCHEMA = {
  BlobShape: {
    dim: packed(1, 'int64')
  },
  BlobProto: {
    shape: opt(7, 'BlobShape'),
    data: f32s(5, true),
    diff: f32s(6, true),
    double_data: f64s(8),
    double_diff: f64s(9),
    num: opt(1, 'int32', 0),
    channels: opt(2, 'int32', 0),
    height: opt(3, 'int32', 0),
    width: opt(4, 'int32', 0)
  },
  BlobProtoVector: {
    blobs: rep(1, 'BlobProto')
  },
  Datum: {
    channels: opt(1, 'int32'),
    height: opt(2, 'int32'),
    width: opt(3, 'int32'),
    data: opt(4, 'bytes'),
    label: opt(5, 'int32'),
    float_data: f32s(6, false),
    encoded: opt(7, 'bool', false)
  },
  FillerParameter: {
    type: opt(1, 'string', 'constant'),
    value: opt(2, 'float', 0),
    min: opt(3, 'float', 0),
    max: opt(4, 'float', 1),
    mean: opt(5, 'float', 0),
    std: opt(6, 'float', 1),
    sparse: opt(7, 'int32', -1),
    variance_norm: opt(8, en('FillerParameter.VarianceNorm'), 'FAN_IN')
  },
  NetParameter: {
    name: opt(1, 'string'),
    input: rep(3, 'string'),
    input_shape: rep(8, 'BlobShape'),
    input_dim: rep(4, 'int32'),
    force_backward: opt(5, 'bool', false),
    state: opt(6, 'NetState'),
    debug_info: opt(7, 'bool', false),
    layer: rep(100, 'LayerParameter'),
    layers: rep(2, 'V1LayerParameter')
  },
  SolverParameter: {
    net: opt(24, 'string'),
    net_param: opt(25, 'NetParameter'),
    train_net: opt(1, 'string'),
    test_net: rep(2, 'string'),
    train_net_param: opt(21, 'NetParameter'),
    test_net_param: rep(22, 'NetParameter'),
    train_state: opt(26, 'NetState'),
    test_state: rep(27, 'NetState'),
    test_iter: rep(3, 'int32'),
    test_interval: opt(4, 'int32', 0),
    test_compute_loss: opt(19, 'bool', false),
    test_initialization: opt(32, 'bool', true),
    base_lr: opt(5, 'float'),
    display: opt(6, 'int32'),
    average_loss: opt(33, 'int32', 1),
    max_iter: opt(7, 'int32'),
    iter_size: opt(36, 'int32', 1),
    lr_policy: opt(8, 'string'),
    gamma: opt(9, 'float'),
    power: opt(10, 'float'),
    momentum: opt(11, 'float'),
    weight_decay: opt(12, 'float'),
    regularization_type: opt(29, 'string', 'L2'),
    stepsize: opt(13, 'int32'),
    stepvalue: rep(34, 'int32'),
    clip_gradients: opt(35, 'float', -1),
    snapshot: opt(14, 'int32', 0),
    snapshot_prefix: opt(15, 'string'),
    snapshot_diff: opt(16, 'bool', false),
    snapshot_format: opt(37, en('SolverParameter.SnapshotFormat'), 'BINARYPROTO'),
    solver_mode: opt(17, en('SolverParameter.SolverMode'), 'GPU'),
    device_id: opt(18, 'int32', 0),
    random_seed: opt(20, 'int64', -1),
    type: opt(40, 'string', 'SGD'),
    delta: opt(31, 'float', 1e-8),
    momentum2: opt(39, 'float', 0.999),
    rms_decay: opt(38, 'float', 0.99),
    debug_info: opt(23, 'bool', false),
    snapshot_after_train: opt(28, 'bool', true),
    solver_type: opt(30, en('SolverParameter.SolverType'), 'SGD'),
    layer_wise_reduce: opt(41, 'bool', true),
    weights: rep(42, 'string')
  },
  SolverState: {
    iter: opt(1, 'int32'),
    learned_net: opt(2, 'string'),
    history: rep(3, 'BlobProto'),
    current_step: opt(4, 'int32', 0)
  },
  NetState: {
    phase: opt(1, en('Phase'), 'TEST'),
    level: opt(2, 'int32', 0),
    stage: rep(3, 'string')
  },
  NetStateRule: {
    phase: opt(1, en('Phase')),
    min_level: opt(2, 'int32'),
    max_level: opt(3, 'int32'),
    stage: rep(4, 'string'),
    not_stage: rep(5, 'string')
  },
  ParamSpec: {
    name: opt(1, 'string'),
    share_mode: opt(2, en('ParamSpec.DimCheckMode')),
    lr_mult: opt(3, 'float', 1),
    decay_mult: opt(4, 'float', 1)
  },
  LayerParameter: {
    name: opt(1, 'string'),
    type: opt(2, 'string'),
    bottom: rep(3, 'string'),
    top: rep(4, 'string'),
    phase: opt(10, en('Phase')),
    loss_weight: rep(5, 'float'),
    param: rep(6, 'ParamSpec'),
    blobs: rep(7, 'BlobProto'),
    propagate_down: rep(11, 'bool'),
    include: rep(8, 'NetStateRule'),
    exclude: rep(9, 'NetStateRule'),
    transform_param: opt(100, 'TransformationParameter'),
    loss_param: opt(101, 'LossParameter'),
    accuracy_param: opt(102, 'AccuracyParameter'),
    argmax_param: opt(103, 'ArgMaxParameter'),
    batch_norm_param: opt(139, 'BatchNormParameter'),
    bias_param: opt(141, 'BiasParameter'),
    clip_param: opt(148, 'ClipParameter'),
    concat_param: opt(104, 'ConcatParameter'),
    contrastive_loss_param: opt(105, 'ContrastiveLossParameter'),
    convolution_param: opt(106, 'ConvolutionParameter'),
    crop_param: opt(144, 'CropParameter'),
    data_param: opt(107, 'DataParameter'),
    dropout_param: opt(108, 'DropoutParameter'),
    dummy_data_param: opt(109, 'DummyDataParameter'),
    eltwise_param: opt(110, 'EltwiseParameter'),
    elu_param: opt(140, 'ELUParameter'),
    embed_param: opt(137, 'EmbedParameter'),
    exp_param: opt(111, 'ExpParameter'),
    flatten_param: opt(135, 'FlattenParameter'),
    hdf5_data_param: opt(112, 'HDF5DataParameter'),
    hdf5_output_param: opt(113, 'HDF5OutputParameter'),
    hinge_loss_param: opt(114, 'HingeLossParameter'),
    image_data_param: opt(115, 'ImageDataParameter'),
    infogain_loss_param: opt(116, 'InfogainLossParameter'),
    inner_product_param: opt(117, 'InnerProductParameter'),
    input_param: opt(143, 'InputParameter'),
    log_param: opt(134, 'LogParameter'),
    lrn_param: opt(118, 'LRNParameter'),
    memory_data_param: opt(119, 'MemoryDataParameter'),
    mvn_param: opt(120, 'MVNParameter'),
    parameter_param: opt(145, 'ParameterParameter'),
    pooling_param: opt(121, 'PoolingParameter'),
    power_param: opt(122, 'PowerParameter'),
    prelu_param: opt(131, 'PReLUParameter'),
    python_param: opt(130, 'PythonParameter'),
    recurrent_param: opt(146, 'RecurrentParameter'),
    reduction_param: opt(136, 'ReductionParameter'),
    relu_param: opt(123, 'ReLUParameter'),
    reshape_param: opt(133, 'ReshapeParameter'),
    scale_param: opt(142, 'ScaleParameter'),
    sigmoid_param: opt(124, 'SigmoidParameter'),
    softmax_param: opt(125, 'SoftmaxParameter'),
    spp_param: opt(132, 'SPPParameter'),
    slice_param: opt(126, 'SliceParameter'),
    swish_param: opt(147, 'SwishParameter'),
    tanh_param: opt(127, 'TanHParameter'),
    threshold_param: opt(128, 'ThresholdParameter'),
    tile_param: opt(138, 'TileParameter'),
    window_data_param: opt(129, 'WindowDataParameter')
  },
  TransformationParameter: {
    scale: opt(1, 'float', 1),
    mirror: opt(2, 'bool', false),
    crop_size: opt(3, 'uint32', 0),
    mean_file: opt(4, 'string'),
    mean_value: rep(5, 'float'),
    force_color: opt(6, 'bool', false),
    force_gray: opt(7, 'bool', false)
  },
  LossParameter: {
    ignore_label: opt(1, 'int32'),
    normalization: opt(3, en('LossParameter.NormalizationMode'), 'VALID'),
    normalize: opt(2, 'bool')
  },
  AccuracyParameter: {
    top_k: opt(1, 'uint32', 1),
    axis: opt(2, 'int32', 1),
    ignore_label: opt(3, 'int32')
  },
  ArgMaxParameter: {
    out_max_val: opt(1, 'bool', false),
    top_k: opt(2, 'uint32', 1),
    axis: opt(3, 'int32')
  },
  ClipParameter: {
    min: req(1, 'float'),
    max: req(2, 'float')
  },
  ConcatParameter: {
    axis: opt(2, 'int32', 1),
    concat_dim: opt(1, 'uint32', 1)
  },
  BatchNormParameter: {
    use_global_stats: opt(1, 'bool'),
    moving_average_fraction: opt(2, 'float', 0.999),
    eps: opt(3, 'float', 1e-5)
  },
  BiasParameter: {
    axis: opt(1, 'int32', 1),
    num_axes: opt(2, 'int32', 1),
    filler: opt(3, 'FillerParameter')
  },
  ContrastiveLossParameter: {
    margin: opt(1, 'float', 1),
    legacy_version: opt(2, 'bool', false)
  },
  ConvolutionParameter: {
    num_output: opt(1, 'uint32'),
    bias_term: opt(2, 'bool', true),
    pad: rep(3, 'uint32'),
    kernel_size: rep(4, 'uint32'),
    stride: rep(6, 'uint32'),
    dilation: rep(18, 'uint32'),
    pad_h: opt(9, 'uint32', 0),
    pad_w: opt(10, 'uint32', 0),
    kernel_h: opt(11, 'uint32'),
    kernel_w: opt(12, 'uint32'),
    stride_h: opt(13, 'uint32'),
    stride_w: opt(14, 'uint32'),
    group: opt(5, 'uint32', 1),
    weight_filler: opt(7, 'FillerParameter'),
    bias_filler: opt(8, 'FillerParameter'),
    engine: opt(15, en('ConvolutionParameter.Engine'), 'DEFAULT'),
    axis: opt(16, 'int32', 1),
    force_nd_im2col: opt(17, 'bool', false)
  },
  CropParameter: {
    axis: opt(1, 'int32', 2),
    offset: rep(2, 'uint32')
  },
  DataParameter: {
    source: opt(1, 'string'),
    batch_size: opt(4, 'uint32'),
    rand_skip: opt(7, 'uint32', 0),
    backend: opt(8, en('DataParameter.DB'), 'LEVELDB'),
    scale: opt(2, 'float', 1),
    mean_file: opt(3, 'string'),
    crop_size: opt(5, 'uint32', 0),
    mirror: opt(6, 'bool', false),
    force_encoded_color: opt(9, 'bool', false),
    prefetch: opt(10, 'uint32', 4)
  },
  DropoutParameter: {
    dropout_ratio: opt(1, 'float', 0.5)
  },
  DummyDataParameter: {
    data_filler: rep(1, 'FillerParameter'),
    shape: rep(6, 'BlobShape'),
    num: rep(2, 'uint32'),
    channels: rep(3, 'uint32'),
    height: rep(4, 'uint32'),
    width: rep(5, 'uint32')
  },
  EltwiseParameter: {
    operation: opt(1, en('EltwiseParameter.EltwiseOp'), 'SUM'),
    coeff: rep(2, 'float'),
    stable_prod_grad: opt(3, 'bool', true)
  },
  ELUParameter: {
    alpha: opt(1, 'float', 1)
  },
  EmbedParameter: {
    num_output: opt(1, 'uint32'),
    input_dim: opt(2, 'uint32'),
    bias_term: opt(3, 'bool', true),
    weight_filler: opt(4, 'FillerParameter'),
    bias_filler: opt(5, 'FillerParameter')
  },
  ExpParameter: {
    base: opt(1, 'float', -1),
    scale: opt(2, 'float', 1),
    shift: opt(3, 'float', 0)
  },
  FlattenParameter: {
    axis: opt(1, 'int32', 1),
    end_axis: opt(2, 'int32', -1)
  },
  HDF5DataParameter: {
    source: opt(1, 'string'),
    batch_size: opt(2, 'uint32'),
    shuffle: opt(3, 'bool', false)
  },
  HDF5OutputParameter: {
    file_name: opt(1, 'string')
  },
  HingeLossParameter: {
    norm: opt(1, en('HingeLossParameter.Norm'), 'L1')
  },
  ImageDataParameter: {
    source: opt(1, 'string'),
    batch_size: opt(4, 'uint32', 1),
    rand_skip: opt(7, 'uint32', 0),
    shuffle: opt(8, 'bool', false),
    new_height: opt(9, 'uint32', 0),
    new_width: opt(10, 'uint32', 0),
    is_color: opt(11, 'bool', true),
    scale: opt(2, 'float', 1),
    mean_file: opt(3, 'string'),
    crop_size: opt(5, 'uint32', 0),
    mirror: opt(6, 'bool', false),
    root_folder: opt(12, 'string', '')
  },
  InfogainLossParameter: {
    source: opt(1, 'string'),
    axis: opt(2, 'int32', 1)
  },
  InnerProductParameter: {
    num_output: opt(1, 'uint32'),
    bias_term: opt(2, 'bool', true),
    weight_filler: opt(3, 'FillerParameter'),
    bias_filler: opt(4, 'FillerParameter'),
    axis: opt(5, 'int32', 1),
    transpose: opt(6, 'bool', false)
  },
  InputParameter: {
    shape: rep(1, 'BlobShape')
  },
  LogParameter: {
    base: opt(1, 'float', -1),
    scale: opt(2, 'float', 1),
    shift: opt(3, 'float', 0)
  },
  LRNParameter: {
    local_size: opt(1, 'uint32', 5),
    alpha: opt(2, 'float', 1),
    beta: opt(3, 'float', 0.75),
    norm_region: opt(4, en('LRNParameter.NormRegion'), 'ACROSS_CHANNELS'),
    k: opt(5, 'float', 1),
    engine: opt(6, en('LRNParameter.Engine'), 'DEFAULT')
  },
  MemoryDataParameter: {
    batch_size: opt(1, 'uint32'),
    channels: opt(2, 'uint32'),
    height: opt(3, 'uint32'),
    width: opt(4, 'uint32')
  },
  MVNParameter: {
    normalize_variance: opt(1, 'bool', true),
    across_channels: opt(2, 'bool', false),
    eps: opt(3, 'float', 1e-9)
  },
  ParameterParameter: {
    shape: opt(1, 'BlobShape')
  },
  PoolingParameter: {
    pool: opt(1, en('PoolingParameter.PoolMethod'), 'MAX'),
    pad: opt(4, 'uint32', 0),
    pad_h: opt(9, 'uint32', 0),
    pad_w: opt(10, 'uint32', 0),
    kernel_size: opt(2, 'uint32'),
    kernel_h: opt(5, 'uint32'),
    kernel_w: opt(6, 'uint32'),
    stride: opt(3, 'uint32', 1),
    stride_h: opt(7, 'uint32'),
    stride_w: opt(8, 'uint32'),
    engine: opt(11, en('PoolingParameter.Engine'), 'DEFAULT'),
    global_pooling: opt(12, 'bool', false),
    round_mode: opt(13, en('PoolingParameter.RoundMode'), 'CEIL')
  },
  PowerParameter: {
    power: opt(1, 'float', 1),
    scale: opt(2, 'float', 1),
    shift: opt(3, 'float', 0)
  },
  PythonParameter: {
    module: opt(1, 'string'),
    layer: opt(2, 'string'),
    param_str: opt(3, 'string', ''),
    share_in_parallel: opt(4, 'bool', false)
  },
  RecurrentParameter: {
    num_output: opt(1, 'uint32', 0),
    weight_filler: opt(2, 'FillerParameter'),
    bias_filler: opt(3, 'FillerParameter'),
    debug_info: opt(4, 'bool', false),
    expose_hidden: opt(5, 'bool', false)
  },
  ReductionParameter: {
    operation: opt(1, en('ReductionParameter.ReductionOp'), 'SUM'),
    axis: opt(2, 'int32', 0),
    coeff: opt(3, 'float', 1)
  },
  ReLUParameter: {
    negative_slope: opt(1, 'float', 0),
    engine: opt(2, en('ReLUParameter.Engine'), 'DEFAULT')
  },
  ReshapeParameter: {
    shape: opt(1, 'BlobShape'),
    axis: opt(2, 'int32', 0),
    num_axes: opt(3, 'int32', -1)
  },
  ScaleParameter: {
    axis: opt(1, 'int32', 1),
    num_axes: opt(2, 'int32', 1),
    filler: opt(3, 'FillerParameter'),
    bias_term: opt(4, 'bool', false),
    bias_filler: opt(5, 'FillerParameter')
  },
  SigmoidParameter: {
    engine: opt(1, en('SigmoidParameter.Engine'), 'DEFAULT')
  },
  SliceParameter: {
    axis: opt(3, 'int32', 1),
    slice_point: rep(2, 'uint32'),
    slice_dim: opt(1, 'uint32', 1)
  },
  SoftmaxParameter: {
    engine: opt(1, en('SoftmaxParameter.Engine'), 'DEFAULT'),
    axis: opt(2, 'int32', 1)
  },
  SwishParameter: {
    beta: opt(1, 'float', 1)
  },
  TanHParameter: {
    engine: opt(1, en('TanHParameter.Engine'), 'DEFAULT')
  },
  TileParameter: {
    axis: opt(1, 'int32', 1),
    tiles: opt(2, 'int32')
  },
  ThresholdParameter: {
    threshold: opt(1, 'float', 0)
  },
  WindowDataParameter: {
    source: opt(1, 'string'),
    scale: opt(2, 'float', 1),
    mean_file: opt(3, 'string'),
    batch_size: opt(4, 'uint32'),
    crop_size: opt(5, 'uint32', 0),
    mirror: opt(6, 'bool', false),
    fg_threshold: opt(7, 'float', 0.5),
    bg_threshold: opt(8, 'float', 0.5),
    fg_fraction: opt(9, 'float', 0.25),
    context_pad: opt(10, 'uint32', 0),
    crop_mode: opt(11, 'string', 'warp'),
    cache_images: opt(12, 'bool', false),
    root_folder: opt(13, 'string', '')
  },
  SPPParameter: {
    pyramid_height: opt(1, 'uint32'),
    pool: opt(2, en('SPPParameter.PoolMethod'), 'MAX'),
    engine: opt(6, en('SPPParameter.Engine'), 'DEFAULT')
  },
  V1LayerParameter: {
    bottom: rep(2, 'string'),
    top: rep(3, 'string'),
    name: opt(4, 'string'),
    include: rep(32, 'NetStateRule'),
    exclude: rep(33, 'NetStateRule'),
    type: opt(5, en('V1LayerParameter.LayerType')),
    blobs: rep(6, 'BlobProto'),
    param: rep(1001, 'string'),
    blob_share_mode: rep(1002, en('V1LayerParameter.DimCheckMode')),
    blobs_lr: rep(7, 'float'),
    weight_decay: rep(8, 'float'),
    loss_weight: rep(35, 'float'),
    accuracy_param: opt(27, 'AccuracyParameter'),
    argmax_param: opt(23, 'ArgMaxParameter'),
    concat_param: opt(9, 'ConcatParameter'),
    contrastive_loss_param: opt(40, 'ContrastiveLossParameter'),
    convolution_param: opt(10, 'ConvolutionParameter'),
    data_param: opt(11, 'DataParameter'),
    dropout_param: opt(12, 'DropoutParameter'),
    dummy_data_param: opt(26, 'DummyDataParameter'),
    eltwise_param: opt(24, 'EltwiseParameter'),
    exp_param: opt(41, 'ExpParameter'),
    hdf5_data_param: opt(13, 'HDF5DataParameter'),
    hdf5_output_param: opt(14, 'HDF5OutputParameter'),
    hinge_loss_param: opt(29, 'HingeLossParameter'),
    image_data_param: opt(15, 'ImageDataParameter'),
    infogain_loss_param: opt(16, 'InfogainLossParameter'),
    inner_product_param: opt(17, 'InnerProductParameter'),
    lrn_param: opt(18, 'LRNParameter'),
    memory_data_param: opt(22, 'MemoryDataParameter'),
    mvn_param: opt(34, 'MVNParameter'),
    pooling_param: opt(19, 'PoolingParameter'),
    power_param: opt(21, 'PowerParameter'),
    relu_param: opt(30, 'ReLUParameter'),
    sigmoid_param: opt(38, 'SigmoidParameter'),
    softmax_param: opt(39, 'SoftmaxParameter'),
    slice_param: opt(31, 'SliceParameter'),
    tanh_param: opt(37, 'TanHParameter'),
    threshold_param: opt(25, 'ThresholdParameter'),
    window_data_param: opt(20, 'WindowDataParameter'),
    transform_param: opt(36, 'TransformationParameter'),
    loss_param: opt(42, 'LossParameter'),
    layer: opt(1, 'V0LayerParameter')
  },
  V0LayerParameter: {
    name: opt(1, 'string'),
    type: opt(2, 'string'),
    num_output: opt(3, 'uint32'),
    biasterm: opt(4, 'bool', true),
    weight_filler: opt(5, 'FillerParameter'),
    bias_filler: opt(6, 'FillerParameter'),
    pad: opt(7, 'uint32', 0),
    kernelsize: opt(8, 'uint32'),
    group: opt(9, 'uint32', 1),
    stride: opt(10, 'uint32', 1),
    pool: opt(11, en('V0LayerParameter.PoolMethod'), 'MAX'),
    dropout_ratio: opt(12, 'float', 0.5),
    local_size: opt(13, 'uint32', 5),
    alpha: opt(14, 'float', 1),
    beta: opt(15, 'float', 0.75),
    k: opt(22, 'float', 1),
    source: opt(16, 'string'),
    scale: opt(17, 'float', 1),
    meanfile: opt(18, 'string'),
    batchsize: opt(19, 'uint32'),
    cropsize: opt(20, 'uint32', 0),
    mirror: opt(21, 'bool', false),
    blobs: rep(50, 'BlobProto'),
    blobs_lr: rep(51, 'float'),
    weight_decay: rep(52, 'float'),
    rand_skip: opt(53, 'uint32', 0),
    det_fg_threshold: opt(54, 'float', 0.5),
    det_bg_threshold: opt(55, 'float', 0.5),
    det_fg_fraction: opt(56, 'float', 0.25),
    det_context_pad: opt(58, 'uint32', 0),
    det_crop_mode: opt(59, 'string', 'warp'),
    new_num: opt(60, 'int32', 0),
    new_channels: opt(61, 'int32', 0),
    new_height: opt(62, 'int32', 0),
    new_width: opt(63, 'int32', 0),
    shuffle_images: opt(64, 'bool', false),
    concat_dim: opt(65, 'uint32', 1),
    hdf5_output_param: opt(1001, 'HDF5OutputParameter')
  },
  PReLUParameter: {
    filler: opt(1, 'FillerParameter'),
    channel_shared: opt(2, 'bool', false)
  }
} as const satisfies Record<string, Record<string, FieldSpec>>

type Schema = typeof CAFFE_SCHEMA
export type MessageName = keyof Schema
/** Field names of a message. */
export type FieldName<M extends MessageName> = keyof Schema[M] & string

type ScalarValue<T> =
  T extends 'string' ? string
    : T extends 'bytes' ? Uint8Array
      : T extends 'bool' ? boolean
        : number

/** The JS value of one (non-repeated) occurrence of a field. */
type SingleValue<F> =
  F extends { readonly type: { readonly enum: infer E extends EnumName } } ? EnumValue<E>
    : F extends { readonly type: infer M extends MessageName } ? Messages[M]
      : F extends { readonly type: infer S } ? ScalarValue<S>
        : never

type RepeatedValue<F> =
  F extends { readonly typed: 'f32' } ? Float32Array
    : F extends { readonly typed: 'f64' } ? Float64Array
      : Array<SingleValue<F>>

type FieldsWithLabel<M extends MessageName, L extends Label> = {
  [K in keyof Schema[M]]: Schema[M][K] extends { readonly label: L } ? K : never
}[keyof Schema[M]]

type Simplify<T> = { [K in keyof T]: T[K] } & {}

type Shape<M extends MessageName> = Simplify<
  { [K in FieldsWithLabel<M, 'optional'>]?: SingleValue<Schema[M][K]> } &
  { [K in FieldsWithLabel<M, 'required'>]: SingleValue<Schema[M][K]> } &
  { [K in FieldsWithLabel<M, 'repeated'>]: RepeatedValue<Schema[M][K]> }
>

/** The plain-object type of every message, by name: Messages['LayerParameter'] etc. */
export type Messages = { [M in MessageName]: Shape<M> }

/** Value type of one field of a message (the array type for repeated fields). */
export type FieldValue<M extends MessageName, F extends FieldName<M>> = Messages[M][F & keyof Messages[M]]

export type BlobShape = Messages['BlobShape']
export type BlobProto = Messages['BlobProto']
export type BlobProtoVector = Messages['BlobProtoVector']
export type Datum = Messages['Datum']
export type FillerParameter = Messages['FillerParameter']
export type NetParameter = Messages['NetParameter']
export type SolverParameter = Messages['SolverParameter']
export type SolverState = Messages['SolverState']
export type NetState = Messages['NetState']
export type NetStateRule = Messages['NetStateRule']
export type ParamSpec = Messages['ParamSpec']
export type LayerParameter = Messages['LayerParameter']
export type V1LayerParameter = Messages['V1LayerParameter']
export type TransformationParameter = Messages['TransformationParameter']
export type LossParameter = Messages['LossParameter']
export type AccuracyParameter = Messages['AccuracyParameter']
export type ConcatParameter = Messages['ConcatParameter']
export type ConvolutionParameter = Messages['ConvolutionParameter']
export type DataParameter = Messages['DataParameter']
export type DropoutParameter = Messages['DropoutParameter']
export type EltwiseParameter = Messages['EltwiseParameter']
export type FlattenParameter = Messages['FlattenParameter']
export type ImageDataParameter = Messages['ImageDataParameter']
export type InnerProductParameter = Messages['InnerProductParameter']
export type InputParameter = Messages['InputParameter']
export type LRNParameter = Messages['LRNParameter']
export type PoolingParameter = Messages['PoolingParameter']
export type ReLUParameter = Messages['ReLUParameter']
export type SigmoidParameter = Messages['SigmoidParameter']
export type SoftmaxParameter = Messages['SoftmaxParameter']
export type TanHParameter = Messages['TanHParameter']
export type BatchNormParameter = Messages['BatchNormParameter']
export type ScaleParameter = Messages['ScaleParameter']
export type BiasParameter = Messages['BiasParameter']
export type Phase = EnumValue<'Phase'>

/**
 * What callers may pass to createMessage(): every field optional, nested messages partial too,
 * typed float arrays also accepted as plain number arrays.
 */
export type MessageInit<M extends MessageName> = {
  [K in keyof Schema[M]]?: InitValue<Schema[M][K]>
}

type InitSingle<F> =
  F extends { readonly type: infer N extends MessageName } ? MessageInit<N> : SingleValue<F>

type InitValue<F> =
  F extends { readonly label: 'repeated' }
    ? (F extends { readonly typed: 'f32' | 'f64' } ? RepeatedValue<F> | readonly number[] : ReadonlyArray<InitSingle<F>>)
    : InitSingle<F>

/** Runtime view of a field: its spec plus its name and resolved kind. */
export interface ResolvedField extends FieldSpec {
  readonly name: string
  readonly kind: 'scalar' | 'enum' | 'message'
  /** Enum name → number, for enum fields. */
  readonly enumValues?: Readonly<Record<string, number>>
  /** Enum number → name, for enum fields. */
  readonly enumNames?: ReadonlyMap<number, string>
  readonly enumName?: string
  readonly messageName?: MessageName
}

/** A message's fields with lookups by name and number, in field-number order (protobuf's serialization order). */
export interface ResolvedMessage {
  readonly name: MessageName
  /** `caffe.LayerParameter`, as protobuf spells it in errors. */
  readonly fullName: string
  readonly fields: readonly ResolvedField[]
  readonly byName: ReadonlyMap<string, ResolvedField>
  readonly byNumber: ReadonlyMap<number, ResolvedField>
}

const resolved = new Map<string, ResolvedMessage>()

function isMessageName (name: string): name is MessageName {
  return Object.hasOwn(CAFFE_SCHEMA, name)
}

function isEnumName (name: string): name is EnumName {
  return Object.hasOwn(CAFFE_ENUMS, name)
}

function resolveField (message: string, name: string, spec: FieldSpec): ResolvedField {
  const t = spec.type
  if (typeof t === 'object') {
    if (!isEnumName(t.enum)) throw new Error(`caffe schema: ${message}.${name} references unknown enum ${t.enum}`)
    const values: Readonly<Record<string, number>> = CAFFE_ENUMS[t.enum]
    const names = new Map<number, string>()
    for (const [k, v] of Object.entries(values)) names.set(v, k)
    return { ...spec, name, kind: 'enum', enumValues: values, enumNames: names, enumName: t.enum }
  }
  if (SCALAR_TYPES.has(t)) return { ...spec, name, kind: 'scalar' }
  if (!isMessageName(t)) throw new Error(`caffe schema: ${message}.${name} references unknown message ${t}`)
  return { ...spec, name, kind: 'message', messageName: t }
}

/** The resolved schema of a message (cached). Throws for a name that is not a caffe message. */
export function messageSpec (name: MessageName | string): ResolvedMessage {
  const hit = resolved.get(name)
  if (hit !== undefined) return hit
  if (!isMessageName(name)) throw new Error(`unknown caffe message type ${name}`)
  const table: Readonly<Record<string, FieldSpec>> = CAFFE_SCHEMA[name]
  const fields = Object.entries(table).map(([fname, spec]) => resolveField(name, fname, spec))
  fields.sort((a, b) => a.no - b.no)
  const out: ResolvedMessage = {
    name,
    fullName: `caffe.${name}`,
    fields,
    byName: new Map(fields.map((f) => [f.name, f])),
    byNumber: new Map(fields.map((f) => [f.no, f]))
  }
  resolved.set(name, out)
  return out
}

/** proto2 value of an unset field: the declared default, else the type's zero (first enum value). */
export function defaultOf<M extends MessageName, F extends FieldName<M>> (message: M, field: F): Exclude<FieldValue<M, F>, undefined> {
  const f = messageSpec(message).byName.get(field)
  if (f === undefined) throw new Error(`caffe.${message} has no field ${field}`)
  return defaultValue(f) as Exclude<FieldValue<M, F>, undefined>
}

/** Runtime default for a resolved field; repeated fields default to an empty array. */
export function defaultValue (f: ResolvedField): unknown {
  if (f.label === 'repeated') {
    if (f.typed === 'f32') return new Float32Array(0)
    if (f.typed === 'f64') return new Float64Array(0)
    return []
  }
  if (f.default !== undefined) return f.default
  switch (f.kind) {
    case 'message': return createMessage(f.messageName as MessageName)
    case 'enum': {
      // proto2: the first value declared is the default, which for caffe.proto is also the lowest listed first.
      const first = Object.keys(f.enumValues ?? {})[0]
      return first
    }
    default:
      break
  }
  switch (f.type) {
    case 'string': return ''
    case 'bytes': return new Uint8Array(0)
    case 'bool': return false
    default: return 0
  }
}

/**
 * Builds a message object from a partial description: every repeated field becomes an array
 * (typed arrays for BlobProto data), nested messages are built the same way, and unknown keys
 * are rejected so a typo cannot silently disappear.
 */
export function createMessage<M extends MessageName> (name: M, init?: MessageInit<M>): Messages[M] {
  return buildMessage(messageSpec(name), init ?? {}) as Messages[M]
}

function buildMessage (spec: ResolvedMessage, init: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of spec.fields) {
    if (f.label === 'repeated') out[f.name] = defaultValue(f)
  }
  for (const [key, value] of Object.entries(init)) {
    const f = spec.byName.get(key)
    if (f === undefined) throw new Error(`${spec.fullName} has no field ${key}`)
    if (value === undefined) continue
    out[key] = buildValue(f, value)
  }
  return out
}

function buildValue (f: ResolvedField, value: unknown): unknown {
  if (f.label === 'repeated') {
    if (f.typed === 'f32') return value instanceof Float32Array ? value : Float32Array.from(value as ArrayLike<number>)
    if (f.typed === 'f64') return value instanceof Float64Array ? value : Float64Array.from(value as ArrayLike<number>)
    if (!Array.isArray(value)) throw new Error(`field ${f.name} is repeated: expected an array`)
    if (f.kind !== 'message') return [...value]
    const sub = messageSpec(f.messageName as MessageName)
    return value.map((v: unknown) => buildMessage(sub, asObject(f, v)))
  }
  if (f.kind === 'message') return buildMessage(messageSpec(f.messageName as MessageName), asObject(f, value))
  return value
}

function asObject (f: ResolvedField, v: unknown): object {
  if (typeof v !== 'object' || v === null) throw new Error(`field ${f.name} holds a message: expected an object`)
  return v
}
