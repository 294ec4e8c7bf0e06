{#- The license header every Python file of the repo starts with (transformers-mlinter TRF028 reads it). #}
# Copyright The {{ cookiecutter.class_prefix }} Authors. All rights reserved.
#
# Licensed under the {{ cookiecutter.license_name }} (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     {{ cookiecutter.license_url }}
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
