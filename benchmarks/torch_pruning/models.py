"""Test architectures for channel-group discovery.

All models take (B, 3, 32, 32) float input and return (B, 10) logits.
Every model names its final classifier layer `fc` (the layer to ignore).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# --- control: pure chain, no BN ------------------------------------------------
class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)            # 8 x 16 x 16
        self.flatten = nn.Flatten()             # 2048 = 8 blocks of 256
        self.fc1 = nn.Linear(8 * 16 * 16, 32)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.conv(x)))
        x = self.flatten(x)
        return self.fc(self.relu2(self.fc1(x)))


# --- a: plain CNN + BN ------------------------------------------------------------
class PlainCNNBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 8 * 8, 32)   # flatten: 16 blocks of 64
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        return self.fc(F.relu(self.fc1(x)))


# --- b: CIFAR ResNet-8 style, identity + projection shortcuts ------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + sc)


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = BasicBlock(16, 16, 1)   # identity shortcut
        self.layer2 = BasicBlock(16, 32, 2)   # projection shortcut
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


# --- c: small VGG-BN ----------------------------------------------------------------
class VGGSmall(nn.Module):
    cfg = [16, 16, 'M', 32, 32, 'M', 64]

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in self.cfg:
            if v == 'M':
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# --- d: user-written ResNet, in-place `out += self.shortcut(x)` ----------------
class UserBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = self.relu(out)
        return out


class UserResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = UserBlock(16, 16, 1)
        self.layer2 = UserBlock(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.adaptive_avg_pool2d(out, 1)
        out = out.view(out.size(0), -1)
        return self.fc(out)


# --- e: channel concatenation ----------------------------------------------------
class ConcatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.b1_conv = nn.Conv2d(3, 8, 3, padding=1)
        self.b1_bn = nn.BatchNorm2d(8)
        self.b2_conv = nn.Conv2d(3, 12, 3, padding=1)   # unequal widths: offsets matter
        self.b2_bn = nn.BatchNorm2d(12)
        self.conv = nn.Conv2d(20, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        a = F.relu(self.b1_bn(self.b1_conv(x)))
        b = F.relu(self.b2_bn(self.b2_conv(x)))
        y = torch.cat([a, b], dim=1)
        y = F.relu(self.bn(self.conv(y)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


# --- f: depthwise-separable ----------------------------------------------------------
class DepthwiseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.bn2 = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.bn3 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.dw(x)))
        x = F.relu(self.bn3(self.pw(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --- f2 (extra): grouped, non-depthwise conv (groups=4) ----------------------------
class GroupedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.gconv = nn.Conv2d(16, 32, 3, padding=1, groups=4)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.gconv(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


MODELS = {
    "control_chain": Chain,
    "a_plain_cnn_bn": PlainCNNBN,
    "b_resnet8": ResNet8,
    "c_vgg_bn": VGGSmall,
    "d_resnet_inplace_add": UserResNet,
    "e_concat": ConcatNet,
    "f_depthwise": DepthwiseNet,
    "f2_grouped_g4": GroupedNet,
}

INPUT_SHAPE = (2, 3, 32, 32)


def make(name, seed=0):
    """Build a model with random weights and non-trivial BN statistics, in eval mode."""
    torch.manual_seed(seed)
    m = MODELS[name]()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


# Hand-written ground truth: for each group, the set of layers whose OUTPUT
# channels are coupled (conv/linear rows + the BN that normalises them) and the
# set of layers whose INPUT channels must shrink with them (name -> index range
# in that layer's weight dim 1, as "lo-hi" inclusive).
EXPECTED = {
    "control_chain": [
        {"out": {"conv"}, "in": {"fc1": "0-2047"}},
        {"out": {"fc1"}, "in": {"fc": "0-31"}},
    ],
    "a_plain_cnn_bn": [
        {"out": {"conv1", "bn1"}, "in": {"conv2": "0-7"}},
        {"out": {"conv2", "bn2"}, "in": {"fc1": "0-1023"}},
        {"out": {"fc1"}, "in": {"fc": "0-31"}},
    ],
    "b_resnet8": [
        {"out": {"conv1", "bn1", "layer1.conv2", "layer1.bn2"},
         "in": {"layer1.conv1": "0-15", "layer2.conv1": "0-15", "layer2.shortcut.0": "0-15"}},
        {"out": {"layer1.conv1", "layer1.bn1"}, "in": {"layer1.conv2": "0-15"}},
        {"out": {"layer2.conv1", "layer2.bn1"}, "in": {"layer2.conv2": "0-31"}},
        {"out": {"layer2.conv2", "layer2.bn2", "layer2.shortcut.0", "layer2.shortcut.1"},
         "in": {"fc": "0-31"}},
    ],
    "c_vgg_bn": [
        {"out": {"features.0", "features.1"}, "in": {"features.3": "0-15"}},
        {"out": {"features.3", "features.4"}, "in": {"features.7": "0-15"}},
        {"out": {"features.7", "features.8"}, "in": {"features.10": "0-31"}},
        {"out": {"features.10", "features.11"}, "in": {"features.14": "0-31"}},
        {"out": {"features.14", "features.15"}, "in": {"fc": "0-63"}},
    ],
    "d_resnet_inplace_add": [
        {"out": {"conv1", "bn1", "layer1.conv2", "layer1.bn2"},
         "in": {"layer1.conv1": "0-15", "layer2.conv1": "0-15", "layer2.shortcut.0": "0-15"}},
        {"out": {"layer1.conv1", "layer1.bn1"}, "in": {"layer1.conv2": "0-15"}},
        {"out": {"layer2.conv1", "layer2.bn1"}, "in": {"layer2.conv2": "0-31"}},
        {"out": {"layer2.conv2", "layer2.bn2", "layer2.shortcut.0", "layer2.shortcut.1"},
         "in": {"fc": "0-31"}},
    ],
    "e_concat": [
        {"out": {"b1_conv", "b1_bn"}, "in": {"conv": "0-7"}},
        {"out": {"b2_conv", "b2_bn"}, "in": {"conv": "8-19"}},
        {"out": {"conv", "bn"}, "in": {"fc": "0-15"}},
    ],
    # depthwise conv: its in == out channels, so it joins its producer's group
    "f_depthwise": [
        {"out": {"conv1", "bn1", "dw", "bn2"}, "in": {"pw": "0-15"}},
        {"out": {"pw", "bn3"}, "in": {"fc": "0-31"}},
    ],
    # grouped conv: conv1's 16 channels feed 4 groups of 4; removing a channel
    # shrinks gconv's per-group weight dim 1 (4 -> 3 per group), only valid if the
    # same number is removed from every group.
    "f2_grouped_g4": [
        {"out": {"conv1", "bn1"}, "in": {"gconv": "0-15"}},
        {"out": {"gconv", "bn2"}, "in": {"fc": "0-31"}},
    ],
}
